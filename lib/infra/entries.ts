import { existsSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The project root: the nearest folder above this file that holds package.json. Found by walking up rather than by
 * a fixed `../..` so that the constructs work from the sources (tsx, ts-jest) and from the compiled dist/ alike.
 */
export function projectRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export type HandlerName = 'snapshot' | 'reconcile' | 'upstream' | 'identity' | 'scan';

/** Lambda handler sources, bundled by NodejsFunction (the infrastructure imports no runtime code). */
export const handlerEntry = (name: HandlerName): string => path.join(projectRoot(), 'lambdas', `${name}.ts`);

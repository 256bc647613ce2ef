import { existsSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The project root: the nearest folder above this file that holds package.json. Found by walking up rather than by
 * a fixed `../..` so that the constructs work from the sources (tsx, ts-jest), from the compiled dist/ and from an
 * installed package alike.
 */
export function projectRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** The Lambda handlers, each `lambdas/<name>.ts` exporting `handler`. */
export const HANDLER_NAMES = [
  'snapshot',
  'reconcile',
  'upstream',
  'identity',
  'scan',
  'inventory',
  'retention',
] as const;

/** One of HANDLER_NAMES. */
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** Where `npm run build` puts a handler's bundle (index.js and its source map), relative to the project root. */
export const handlerBundleDir = (name: HandlerName): string => path.join('dist', 'lambdas', name);

/**
 * The folder of a handler's prebundled code (scripts/build-constructs.ts), the asset of its function: the
 * infrastructure imports no runtime code, and an app that uses the package needs neither our sources nor esbuild.
 * Missing bundles fail synthesis here, in one line that says what to do.
 */
export function handlerCode(name: HandlerName, root: string = projectRoot()): string {
  const dir = path.join(root, handlerBundleDir(name));
  if (!existsSync(path.join(dir, 'index.js'))) {
    throw new Error(`imagevault: no Lambda bundle at ${dir}/index.js: run npm run build`);
  }
  return dir;
}

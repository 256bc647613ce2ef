import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

/**
 * Loads a CommonJS file through V8's code cache, so that a run compiles only what an earlier run did not.
 *
 * Why: the CLI is one bundled file of ~2 MiB, and on Node 20 compiling it was the largest share of start-up (about
 * 70 ms of a 0.2 s `--help`, by --cpu-prof). Node ≥ 22.1 has this built in (`module.enableCompileCache`) and is used
 * when present; on older versions the same is done here with `vm.Script` and `cachedData`, the mechanism Node's own
 * cache uses. A cache V8 does not accept (another Node version, other flags) is ignored and replaced; a cache
 * directory that cannot be written only costs the speed-up. `IMAGEVAULT_CODE_CACHE=off` turns it off.
 *
 * One cache per command (`key`): V8 caches the functions compiled when the cache is made, and `snapshot` compiles
 * other functions than `--help` does.
 */
export function requireWithCodeCache(file: string, key: string): unknown {
  const dir = cacheDirectory();
  // A file chosen at run time, beside the entry point: neither bundled nor known to the type checker.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (dir === undefined) return require(file);
  const builtIn = (Module as unknown as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
  if (typeof builtIn === 'function') {
    builtIn(dir);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file);
  }
  const source = readFileSync(file, 'utf8');
  const { size, mtimeMs } = statSync(file);
  const safeKey = key.replace(/[^a-z0-9-]/gi, '_').slice(0, 40) || 'none';
  const cacheFile = path.join(
    dir,
    `${path.basename(file, '.js')}-${safeKey}-${process.version}-${process.arch}-${size}-${Math.trunc(mtimeMs)}.v8`,
  );
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache yet: this run makes it
  }
  const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, '')), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    // Made at exit, when every function this command needed has been compiled.
    process.once('exit', () => writeCache(dir, cacheFile, script));
  }
  const module = { exports: {} as unknown, filename: file, id: file, loaded: false };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, require, module, file, path.dirname(file));
  return module.exports;
}

function cacheDirectory(): string | undefined {
  if (process.env.IMAGEVAULT_CODE_CACHE === 'off') return undefined;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'imagevault');
}

function writeCache(dir: string, file: string, script: vm.Script): void {
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, file);
  } catch {
    // a read-only or full home: the next run compiles again, nothing else changes
  }
}

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
 */
export function requireWithCodeCache(file: string): unknown {
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
  const cacheFile = path.join(
    dir,
    `${path.basename(file, '.js')}-${process.version}-${process.arch}-${size}-${Math.trunc(mtimeMs)}.v8`,
  );
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // no cache yet: this run makes it
  }
  const script = new vm.Script(Module.wrap(source.replace(/^#!.*/, '')), { filename: file, cachedData });
  const module = { exports: {} as unknown, filename: file, id: file, loaded: false };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, require, module, file, path.dirname(file));
  // Made once the bundle's top level has run, not at exit: by the end of a long command V8 has flushed the bytecode
  // of functions idle for a while, and a cache made then cost every later run ~80 ms more than it saved (a 64 MiB
  // snapshot after a 16 × 32 MiB one made the cache: 0.98 s against 0.91 s, whole-process runs side by side, 9 pairs).
  if (cachedData === undefined || script.cachedDataRejected) writeCache(dir, cacheFile, script);
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

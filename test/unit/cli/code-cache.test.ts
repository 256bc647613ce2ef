import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

/*
 * Each load runs in a child process, as each CLI run does: inside one process V8 finds a script it has compiled
 * before in its own compilation cache and never looks at the cache file.
 */
const nodeMajor = Number(process.versions.node.split('.')[0]);
const nodeMinor = Number(process.versions.node.split('.')[1]);
// Node ≥ 22.1 caches through module.enableCompileCache, which keeps no files of ours.
const ownCache = nodeMajor < 22 || (nodeMajor === 22 && nodeMinor < 1);
const ifOwnCache = ownCache ? it : it.skip;

describe('requireWithCodeCache', () => {
  let dir: string;
  let loader: string;
  let n = 0;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'code-cache-'));
    loader = path.join(dir, 'loader.js');
    buildSync({
      entryPoints: [path.join(__dirname, '../../../lib/cli/code-cache.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: loader,
      logLevel: 'error',
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const bundle = (body: string) => {
    const file = path.join(dir, `bundle-${++n}.js`);
    writeFileSync(file, `#!/usr/bin/env node\n${body}`);
    return file;
  };
  const cacheDir = () => path.join(dir, 'cache', 'imagevault');
  const cacheFiles = (file: string) => {
    try {
      return readdirSync(cacheDir()).filter((f) => f.startsWith(`${path.basename(file, '.js')}-`));
    } catch {
      return [];
    }
  };
  /** Loads `file` in a new Node process through the cache; prints its exports and whether V8 took the cache. */
  const load = (file: string, env: NodeJS.ProcessEnv = {}) => {
    const script = `
      const vm = require('node:vm');
      let rejected;
      const Script = vm.Script;
      vm.Script = class extends Script {
        constructor(source, options) { super(source, options); if (options.cachedData) rejected = this.cachedDataRejected; }
      };
      const exported = require(${JSON.stringify(loader)}).requireWithCodeCache(${JSON.stringify(file)});
      // What is in the cache directory before exit: the cache is made at load, not by an exit hook.
      let files = [];
      try { files = require('node:fs').readdirSync(${JSON.stringify(cacheDir())}); } catch {}
      process.stdout.write(JSON.stringify({ exported, rejected, files }));`;
    const out = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, IMAGEVAULT_CODE_CACHE: '', XDG_CACHE_HOME: path.join(dir, 'cache'), ...env },
      encoding: 'utf8',
    });
    const { files, ...rest } = JSON.parse(out) as { exported: unknown; rejected?: boolean; files: string[] };
    return { ...rest, cached: files.some((f) => f.startsWith(`${path.basename(file, '.js')}-`)) };
  };

  ifOwnCache('writes the cache once the bundle has loaded, and the next run takes it', () => {
    const file = bundle('exports.answer = 6 * 7; exports.f = function () { return 1; };');
    expect(load(file)).toEqual({ exported: { answer: 42 }, cached: true });
    const made = cacheFiles(file);
    expect(made).toHaveLength(1);
    const bytes = readFileSync(path.join(cacheDir(), made[0]));
    expect(load(file)).toEqual({ exported: { answer: 42 }, rejected: false, cached: true });
    // Taken, so not made again.
    expect(readFileSync(path.join(cacheDir(), made[0]))).toEqual(bytes);
  });

  ifOwnCache('replaces a cache V8 does not take, and the bundle still loads', () => {
    const file = bundle('exports.value = "from source";');
    load(file);
    const cacheFile = path.join(cacheDir(), cacheFiles(file)[0]);
    writeFileSync(cacheFile, 'not a code cache');
    expect(load(file)).toMatchObject({ exported: { value: 'from source' }, rejected: true });
    expect(load(file)).toMatchObject({ exported: { value: 'from source' }, rejected: false });
  });

  it('IMAGEVAULT_CODE_CACHE=off loads the file with no cache at all', () => {
    const file = bundle('exports.plain = true;');
    expect(load(file, { IMAGEVAULT_CODE_CACHE: 'off' })).toEqual({
      exported: { plain: true },
      cached: false,
    });
    expect(cacheFiles(file)).toEqual([]);
  });

  ifOwnCache('a cache directory that cannot be written costs only the speed-up', () => {
    const blocked = path.join(dir, 'blocked');
    writeFileSync(blocked, 'a file where the cache directory should be');
    const file = bundle('exports.still = "loads";');
    expect(load(file, { XDG_CACHE_HOME: blocked })).toMatchObject({ exported: { still: 'loads' } });
    expect(load(file, { XDG_CACHE_HOME: blocked })).toMatchObject({ exported: { still: 'loads' } });
  });
});

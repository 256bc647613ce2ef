/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof DIR` or `node --cpu-prof`): where the samples
 * went, by function (self time) and by package/area, so a profile can be read without Chrome DevTools.
 *
 *   npx tsx bench/cpuprofile.ts FILE.cpuprofile [--top N] [--callers FUNCTION [--depth N]]
 *
 * `--callers update` shows the call paths (DEPTH frames up, default 6) that the self time of `update` came from.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** node_modules package, our lib/ area, node internals, or a V8 pseudo-frame like (garbage collector). */
function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const lib = url.match(/\/(lib\/[^/]+|bin)\//);
  if (lib) return lib[1];
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

function main(): void {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: tsx bench/cpuprofile.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const top = Number(option('--top')) || 25;
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fnTotals = new Map<string, number>();
  const areaTotals = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const key = `${functionName || '(anonymous)'}  ${url ? `${url.replace(/^.*\/(node_modules|lib|dist)\//, '$1/')}:${lineNumber + 1}` : ''}`;
    fnTotals.set(key, (fnTotals.get(key) ?? 0) + us);
    const a = area(url, functionName);
    areaTotals.set(a, (areaTotals.get(a) ?? 0) + us);
  }
  const print = (title: string, m: Map<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(
        `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}\n`,
      );
    }
  };
  process.stdout.write(
    `${file}: ${(total / 1e6).toFixed(2)} s sampled, wall ${((p.endTime - p.startTime) / 1e6).toFixed(2)} s\n`,
  );
  print('self time by area', areaTotals);
  print('self time by function', fnTotals);
  const callersOf = option('--callers');
  if (callersOf) {
    const depth = Number(option('--depth')) || 6;
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const frame = (n: Node) =>
      `${n.callFrame.functionName || '(anonymous)'}@${n.callFrame.url.replace(/^.*\/(node_modules|lib|dist)\//, '$1/').replace(/^node:internal\//, '')}:${n.callFrame.lineNumber + 1}`;
    const paths = new Map<string, number>();
    for (const [id, us] of self) {
      let n = byId.get(id)!;
      if (n.callFrame.functionName !== callersOf) continue;
      const chain: string[] = [];
      for (let i = 0; i < depth && n; i++) {
        chain.push(frame(n));
        const up = parent.get(n.id);
        if (up === undefined) break;
        n = byId.get(up)!;
      }
      const key = chain.join('\n          ← ');
      paths.set(key, (paths.get(key) ?? 0) + us);
    }
    print(`call paths of ${callersOf}`, paths);
  }
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

main();

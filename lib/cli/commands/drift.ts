import { NewerVersionsCheck } from '../../drift/newer-versions';
import { UpstreamWatcher, type UpstreamCheckReport, type UpstreamResult } from '../../drift/upstream';
import { dockerConfigCredentials } from '../../registry';
import { timeoutsOf, type CommandContext } from '../context';
import { ExitCode } from '../exit';
import { out } from './format';
import { newerText, parseFailOn, tripsGate } from './newer';

export interface DriftCheckOptions {
  reference: string[];
  /** Also name newer versions of the bases (`--no-newer` turns it off). @default true */
  newer?: boolean;
  /** `newer-major|newer-minor|newer-patch`: exit code 5 when a base has a newer release of that kind or bigger. */
  failOn?: string;
  /** Tags never reported as newer, as globs (`--ignore-tag`). */
  ignoreTag?: string[];
  /** Count pre-releases as newer versions. */
  prereleases?: boolean;
}

/**
 * `imagevault drift check`: one pass of the upstream watcher against the vault's state, on demand or in CI before
 * a deploy, and the newer versions of each base. Exit code 3 when an upstream base moved under images in the vault;
 * else 5 when `--fail-on` is given and a base has a newer release of that kind; 0 otherwise (deferred or failed
 * references are reported, and a failure sets exit code 1 unless drift or a newer version was found).
 */
export async function driftCheckCommand(ctx: CommandContext, options: DriftCheckOptions): Promise<void> {
  const opts = ctx.opts();
  const failOn = parseFailOn(options.failOn);
  const vault = await ctx.vault();
  const access = {
    vault,
    insecure: opts.insecure,
    credentials: dockerConfigCredentials(),
    timeouts: timeoutsOf(opts),
  };
  const watcher = new UpstreamWatcher(access);
  const scope = options.reference.length > 0 ? { references: options.reference } : {};
  const report = await watcher.check(scope);
  // Newer versions: the tag lists kept in the vault while fresh (daily), so this adds no request most runs.
  const newer =
    options.newer === false
      ? undefined
      : await new NewerVersionsCheck({
          ...access,
          rules: { '': { ignore: options.ignoreTag ?? [], prereleases: options.prereleases === true } },
        }).check(scope);
  out(opts.json, newer ? { ...report, newer } : report, () =>
    [driftCheckText(report), ...(newer ? newerText(newer) : [])].join('\n'),
  );
  if (report.results.some((r) => r.status === 'moved')) process.exitCode = ExitCode.Drift;
  else if (tripsGate(newer?.results ?? [], failOn)) process.exitCode = ExitCode.NewerVersion;
  else if ([...report.results, ...(newer?.results ?? [])].some((r) => r.status === 'failed'))
    process.exitCode = ExitCode.Failed;
}

/** The human report: one block per reference, moved ones with the images to rebuild. */
export function driftCheckText(report: UpstreamCheckReport): string {
  if (report.results.length === 0) return 'no upstream bases in the vault: nothing to check';
  const lines = report.results.flatMap(resultLines);
  const moved = report.results.filter((r) => r.status === 'moved').length;
  lines.push(
    `${report.results.length} upstream tag${report.results.length === 1 ? '' : 's'} checked at ${report.checkedAt}: ` +
      `${moved} moved; ${report.requests.head} HEAD, ${report.requests.get} GET`,
  );
  return lines.join('\n');
}

function resultLines(r: UpstreamResult): string[] {
  switch (r.status) {
    case 'current':
      return [
        `current\t${r.reference}\t${r.digest}${r.otherPlatformsChanged ? '\t(changed only on platforms not in use)' : ''}`,
      ];
    case 'deferred':
      return [`deferred\t${r.reference}\t${r.reason}`];
    case 'failed':
      return [`FAILED\t${r.reference}\t${r.error}`];
    case 'moved':
      return r.moves.flatMap((m) => [
        `MOVED\t${r.reference}\t${m.oldDigest} -> ${m.newDigest}`,
        ...m.platforms.map((p) => `\t${p.platform}: ${p.oldManifest} -> ${p.newManifest ?? 'removed'}`),
        ...m.affected.map(
          (i) =>
            `\tbuilt on the old base: ${i.repository}@${i.digest}${i.tags.length ? ` (${i.tags.join(', ')})` : ''}`,
        ),
        // The diff is read once per transition (when it is first reported); later checks only repeat the finding.
        ...(m.diff ?? []).flatMap((d) => [
          `\t${d.platform}: base layers changed at ${d.layers.map((c) => c.position).join(', ') || '(none)'}`,
          ...d.history.filter((l) => !l.startsWith('  ')).map((l) => `\t    ${l}`),
        ]),
      ]);
  }
}

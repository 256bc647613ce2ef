import type {
  NewerCandidate,
  NewerVersionsCheck,
  NewerVersionsReport,
  NewerVersionsResult,
} from '../../drift/newer-versions';
import { Reference } from '../../oci';
import { NEWER_SEVERITY, describeNewer } from '../../drift/versions';
import { UsageError } from '../exit';

/*
 * How the CLI shows newer versions of bases (`imagevault drift check`, `imagevault base`), and the opt-in CI gate
 * `--fail-on newer-major|newer-minor|newer-patch`.
 */

export type FailOn = 'newer-major' | 'newer-minor' | 'newer-patch';
export const FAIL_ON_CHOICES: readonly FailOn[] = ['newer-major', 'newer-minor', 'newer-patch'];

/** The `--fail-on` value, checked (commander checks the choices too; this is for callers that do not). */
export function parseFailOn(value: string | undefined): FailOn | undefined {
  if (value === undefined) return undefined;
  if (!(FAIL_ON_CHOICES as readonly string[]).includes(value))
    throw new UsageError(`--fail-on ${value}: expected one of ${FAIL_ON_CHOICES.join(', ')}`);
  return value as FailOn;
}

/**
 * Whether a result trips the gate: a newer release of the kind named or a bigger one (`newer-minor` trips on a
 * newer minor or major). A variant-only finding (`20-alpine3.21`) trips none: it is advice, not a version.
 */
export function tripsGate(results: readonly NewerVersionsResult[], failOn: FailOn | undefined): boolean {
  if (!failOn) return false;
  const least = NEWER_SEVERITY[failOn.replace('newer-', '') as keyof typeof NEWER_SEVERITY];
  return results.some((r) => r.newer.some((n) => n.kind !== 'variant' && NEWER_SEVERITY[n.kind] >= least));
}

/** `newer: 2.7.8 (patch), 3.3.6 (major)`, then what a candidate lacks or could not be checked for. */
export function newerLine(candidates: readonly NewerCandidate[]): string {
  const notes = candidates.flatMap((c) =>
    c.platforms?.missing.length
      ? [`${c.tag} lacks ${c.platforms.missing.join(', ')}`]
      : c.platformsUnknown
        ? [`${c.tag} platforms not checked: ${c.platformsUnknown}`]
        : [],
  );
  return [describeNewer(candidates), ...notes].join('; ');
}

/** One line per base tag with newer versions, or that could not be compared; then a summary. */
export function newerText(report: NewerVersionsReport): string[] {
  const lines: string[] = [];
  for (const r of report.results) {
    const at = r.current ? ` (now ${r.current})` : '';
    if (r.newer.length > 0) lines.push(`NEWER\t${r.reference}${at}\t${newerLine(r.newer)}`);
    if (r.status === 'deferred' || r.status === 'failed')
      lines.push(
        `${r.status === 'failed' ? 'FAILED' : 'deferred'}\t${r.reference}\tversions: ${r.reason ?? ''}${r.listedAt ? ` (tags listed ${r.listedAt})` : ''}`,
      );
  }
  const compared = report.results.filter((r) => r.listedAt !== undefined).length;
  const behind = report.results.filter((r) => r.newer.some((n) => n.kind !== 'variant')).length;
  lines.push(
    `${compared} base tag${compared === 1 ? '' : 's'} compared with upstream versions: ${behind} with a newer release; ` +
      `${report.requests.tagPages} tag list page${report.requests.tagPages === 1 ? '' : 's'}, ${report.requests.get} GET`,
  );
  return lines;
}

/** Newer versions of one base tag in an image's chain (`imagevault base`). */
export interface BaseNewer {
  status: NewerVersionsResult['status'];
  current?: string;
  newer: NewerCandidate[];
  listedAt?: string;
  reason?: string;
}

/**
 * Newer versions of every tagged upstream base in a report's chains, for the platforms of the image: from the tag
 * lists kept in the vault while fresh, else listed now (and not kept: `base` only reads the vault).
 */
export async function newerForChains(
  chains: readonly { platform: string; chain: readonly { reference?: string; method: string }[] }[],
  check: NewerVersionsCheck,
): Promise<Map<string, BaseNewer>> {
  const platforms: Record<string, string[]> = {};
  for (const p of chains)
    for (const b of p.chain) {
      const key = b.method === 'previous-push' ? undefined : newerKey(b.reference);
      if (!key) continue;
      platforms[key] = [...new Set([...(platforms[key] ?? []), p.platform])];
    }
  const out = new Map<string, BaseNewer>();
  if (Object.keys(platforms).length === 0) return out;
  const report = await check.check({ references: Object.keys(platforms), platforms, inUse: false });
  for (const r of report.results) {
    if (r.status === 'not-watched') continue;
    out.set(r.reference, {
      status: r.status,
      ...(r.current ? { current: r.current } : {}),
      newer: r.newer,
      ...(r.listedAt ? { listedAt: r.listedAt } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
    });
  }
  return out;
}

/** The key newerForChains uses for a chain entry's reference, or undefined. */
export function newerKey(reference: string | undefined): string | undefined {
  if (!reference) return undefined;
  try {
    const ref = Reference.parse(reference);
    return ref.tag ? ref.withTag(ref.tag).toString() : undefined;
  } catch {
    return undefined;
  }
}

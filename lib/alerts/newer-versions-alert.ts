import type { NewerVersionsResult } from '../drift/newer-versions';
import type { NewerKind } from '../drift/versions';

/*
 * The weekly `newer-versions` digest: one SNS message naming, for every base tag in use with a newer release, the
 * newest patch, minor and major beyond it and what each lacks of our platforms. One message whatever the number of
 * bases: formatAlert (./text) cuts the lists to fit SNS's limits, and this text says how many more there are and
 * how to see them all.
 */

/** One newer version in the digest. */
export interface DigestNewer {
  readonly kind: NewerKind;
  readonly tag: string;
  readonly version: string;
  /** The moving tag at the precision in use, when upstream has one. */
  readonly line?: string;
  /** Platforms our images use that it lacks. */
  readonly missing?: readonly string[];
  /** Why its platforms are not known. */
  readonly platformsUnknown?: string;
}

/** A base tag in use with newer versions. */
export interface DigestBase {
  readonly reference: string;
  /** Where the moving tag stands now (`2.7.8` for `2.7`). */
  readonly current?: string;
  readonly newer: readonly DigestNewer[];
  /** The vault repositories with images built on it. */
  readonly repositories: readonly string[];
  readonly listedAt?: string;
}

export interface NewerVersionsAlert {
  readonly kind: 'newer-versions';
  /** Most behind first: a newer major before a minor before a patch, then by reference. */
  readonly bases: readonly DigestBase[];
  /** Counts over every base, also those cut from `bases`. */
  readonly summary: {
    readonly bases: number;
    readonly major: number;
    readonly minor: number;
    readonly patch: number;
    readonly variant: number;
    /** Base tags whose newest release lacks a platform our images use. */
    readonly lackingPlatforms: number;
  };
  readonly checkedAt: string;
  /** When the previous digest went out, if one did. */
  readonly since?: string;
  readonly store: string;
}

const RANK: Record<NewerKind, number> = { major: 3, minor: 2, patch: 1, variant: 0 };

/** The digest of a newer-versions report: every base tag in use with a newer version. */
export function newerVersionsAlertOf(
  results: readonly NewerVersionsResult[],
  context: { checkedAt: string; since?: string; store: string },
): NewerVersionsAlert {
  const bases: DigestBase[] = results
    .filter((r) => r.newer.length > 0)
    .map((r) => ({
      reference: r.reference,
      ...(r.current ? { current: r.current } : {}),
      newer: r.newer.map((n) => ({
        kind: n.kind,
        tag: n.tag,
        version: n.version,
        ...(n.line ? { line: n.line } : {}),
        ...(n.platforms?.missing.length ? { missing: n.platforms.missing } : {}),
        ...(n.platformsUnknown ? { platformsUnknown: n.platformsUnknown } : {}),
      })),
      repositories: r.repositories,
      ...(r.listedAt ? { listedAt: r.listedAt } : {}),
    }));
  const worst = (b: DigestBase) => Math.max(...b.newer.map((n) => RANK[n.kind]));
  bases.sort((a, b) => worst(b) - worst(a) || a.reference.localeCompare(b.reference));
  const count = (kind: NewerKind) => bases.filter((b) => b.newer.some((n) => n.kind === kind)).length;
  return {
    kind: 'newer-versions',
    bases,
    summary: {
      bases: bases.length,
      major: count('major'),
      minor: count('minor'),
      patch: count('patch'),
      variant: count('variant'),
      lackingPlatforms: bases.filter((b) => b.newer.some((n) => n.missing?.length)).length,
    },
    checkedAt: context.checkedAt,
    ...(context.since ? { since: context.since } : {}),
    store: context.store,
  };
}

/** Subject, text lines and attributes of a (bounded) digest; `omitted` counts what formatAlert cut, by path. */
export function newerVersionsText(
  a: NewerVersionsAlert,
  omitted: ReadonlyMap<string, number>,
): { subject: string; lines: string[]; repository: string } {
  const s = a.summary;
  const kinds = (['major', 'minor', 'patch'] as const)
    .filter((k) => s[k] > 0)
    .map((k) => `${s[k]} ${k}`)
    .join(', ');
  const lines = [
    `${s.bases} base ${s.bases === 1 ? 'tag' : 'tags'} in use ${s.bases === 1 ? 'has' : 'have'} a newer version upstream` +
      `${kinds ? ` (${kinds})` : ''}${s.variant ? `; ${s.variant} on a frozen variant line` : ''}` +
      `${s.lackingPlatforms ? `; for ${s.lackingPlatforms}, the newest release lacks a platform our images use` : ''}.`,
    'A base that never moves still ages: a newer line gets the fixes.',
    '',
  ];
  for (const b of a.bases) {
    lines.push(
      `${b.reference}${b.current ? ` (now ${b.current})` : ''}, used by ${b.repositories.join(', ') || '(no vault image)'}`,
    );
    const notes = b.newer.flatMap((n) =>
      n.missing?.length
        ? [`${n.tag} lacks ${n.missing.join(', ')}`]
        : n.platformsUnknown
          ? [`${n.tag} platforms not checked`]
          : [],
    );
    lines.push(
      `  newer: ${b.newer.map((n) => `${n.tag} (${n.kind}${n.line ? `, tag ${n.line}` : ''})`).join(', ')}${notes.length ? `; ${notes.join('; ')}` : ''}`,
    );
  }
  const more = omitted.get('bases');
  if (more)
    lines.push(
      `  ... and ${more.toLocaleString('en-US')} more base tags, not listed here; all of them: imagevault drift check --store ${a.store}`,
    );
  lines.push(
    '',
    `${'Checked at:'.padEnd(15)}${a.checkedAt}`,
    ...(a.since ? [`${'Last digest:'.padEnd(15)}${a.since}`] : []),
    `${'Vault:'.padEnd(15)}${a.store}`,
    '',
    'Next steps: move FROM to the newer tag in each Dockerfile, rebuild and test; a tag you do not want is silenced',
    'with an ignore pattern (newerVersions in the stack configuration).',
  );
  const only = a.bases.length === 1 ? a.bases[0] : undefined;
  const repositories = [...new Set(a.bases.flatMap((b) => b.repositories))];
  return {
    subject: only
      ? `[imagevault] newer versions of ${only.reference}`
      : `[imagevault] newer base versions: ${s.bases} base tags behind${kinds ? ` (${kinds})` : ''}`,
    lines,
    repository: repositories.length === 1 ? repositories[0] : '*',
  };
}

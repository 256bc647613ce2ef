/*
 * Version tags as base images publish them, and what "newer" means for the tag an image is built FROM. Pure: no
 * I/O, so every rule below is a unit test.
 *
 * A tag reads as `[v]<numbers>[<pre-release>][-<variant>]`:
 *
 *   2.7            numbers [2, 7]: a moving minor line (the registry re-points it at every 2.7.x release)
 *   2.7.8          numbers [2, 7, 8]: one release
 *   3.3-slim       variant `slim`
 *   3.3.6-bookworm variant `bookworm`
 *   v1.2.3         the `v` is kept for printing, ignored when comparing
 *   20-alpine3.20  variant `alpine3.20`: family `alpine`, variant version [3, 20]
 *   3.4.0-rc1      pre-release `rc1` (also `3.13.0rc1`, `1.0.0-beta.2`, `3.13.0a1`); its variant is what follows
 *
 * Anything else (`latest`, `edge`, `lts`, `bookworm`, `1.2.3.4`, a digest-like tag) is no version. Dates (`20240115`,
 * `2024.01.15`, `2024-01-15`) would read as huge majors, so they are no version unless asked for (`dates`).
 *
 * A tag compares only with tags of the same variant family: `2.7-slim` with `*-slim`, never with `2.7` or
 * `2.7-alpine`. A variant that carries its own version (`alpine3.20`, `ltsc2022`) is one family whatever that
 * version: `20-alpine3.20` compares with `24.1.0-alpine3.21`, because when Node 24 ships only on alpine3.21 the
 * user of `20-alpine3.20` must hear of it. For each version the tag with the user's own variant version is named
 * when upstream has it, else the newest variant version. Codenames (`bookworm`, `trixie`) carry no order and stay
 * separate families.
 *
 * "Beyond" is measured at the precision of the tag in use, because a shorter tag is a moving line that already
 * follows the releases inside it:
 *
 *   in use 2.7.6   patch: newest 2.7.x above 2.7.6; minor: newest 2.x above 2.7; major: newest above 2
 *   in use 2.7     no patch (2.7 follows 2.7.x; if it moved under the image the upstream check says so);
 *                  `line` says where 2.7 stands now (2.7.8); minor and major as above
 *   in use 20      no patch, no minor; major: newest above 20
 *
 * and `variant` names the line's own tag on a newer variant version (`20-alpine3.21` for `20-alpine3.20`): a line
 * frozen on an old OS release, which no digest check can see, since the frozen tag never moves again.
 */

import { globToRegExp } from './version-rules';

export { globToRegExp };

export type NewerKind = 'major' | 'minor' | 'patch' | 'variant';

/** What a tag says as a version; see the file comment. */
export interface VersionTag {
  tag: string;
  /** 1 to 3 numbers; their count is the tag's precision. */
  numbers: number[];
  /** The numbers as written (`22.04`, `v` left out), for printing. */
  release: string;
  /** `rc1`, `beta.2`, `a1`; absent for a release. */
  pre?: string;
  /** Everything after the numbers and pre-release, without its leading `-`; '' for none. */
  variant: string;
  /** The variant with each segment's trailing version removed: `alpine3.20` → `alpine`, `slim-bookworm` as is. */
  family: string;
  /** The versions inside the variant, segment by segment (`alpine3.20` → [[3, 20]]); empty when it has none. */
  variantVersion: number[][];
}

export interface ParseOptions {
  /** Read date-like tags (`20240115`, `2024.01.15`) as versions. @default false */
  readonly dates?: boolean;
}

/** `a1`, `b2`, `rc`, `rc1`, `rc.1`, `alpha`, `beta.2`, `pre`, `preview3`, `dev`, `snapshot`, `nightly`, `ea`. */
const PRE = /^(?:(?:alpha|beta|rc|pre|preview|dev|snapshot|nightly|ea)(?:\.?\d+)*|[ab]\d+)$/i;
const CORE = /^(v?)(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$/;
/** A first number of four digits from 1900 to 2099, or six and more digits: a year or a whole date. */
const DATE_LIKE = /^(?:(?:19|20)\d{2}|\d{6,})$/;
/** A variant segment: a name, optionally ending in a dotted version (`alpine3.20`, `ltsc2022`, `focal`). */
const SEGMENT = /^([A-Za-z_]+(?:[A-Za-z0-9_]*[A-Za-z_])?)?(\d+(?:\.\d+)*)?$/;

/** The version in a tag, or undefined when the tag is no version (see the file comment). */
export function parseVersionTag(tag: string, options: ParseOptions = {}): VersionTag | undefined {
  // With dates on, `2024-01-15` is the numbers 2024.01.15 (its dashes are no variant).
  const dashedDate = options.dates ? /^(\d{4})-(\d{2})-(\d{2})(.*)$/.exec(tag) : null;
  const m = dashedDate ? [tag, '', ...dashedDate.slice(1)] : CORE.exec(tag);
  if (!m) return undefined;
  const parts = [m[2], m[3], m[4]].filter((p): p is string => p !== undefined);
  if (!options.dates && DATE_LIKE.test(parts[0])) return undefined;
  // Numbers past JavaScript's safe integers are no version anyone publishes.
  const numbers = parts.map(Number);
  if (numbers.some((n) => !Number.isSafeInteger(n))) return undefined;
  let rest = m[5];
  let pre: string | undefined;
  // A pre-release either follows the numbers directly (`3.13.0rc1`) or as the first dash segment (`3.4.0-rc1`).
  const attached = /^([A-Za-z][A-Za-z0-9.]*)(.*)$/.exec(rest);
  if (attached && (attached[2] === '' || attached[2].startsWith('-'))) {
    if (!PRE.test(attached[1])) return undefined; // `2.7foo`: not a version
    pre = attached[1];
    rest = attached[2];
  } else if (rest.startsWith('-')) {
    const first = rest.slice(1).split('-')[0];
    if (PRE.test(first)) {
      pre = first;
      rest = rest.slice(1 + first.length);
    }
  }
  if (rest !== '' && !rest.startsWith('-')) return undefined; // `1.2.3.4`, `2.7_x`
  const variant = rest.slice(1);
  if (rest !== '' && variant.split('-').some((s) => s === '')) return undefined;
  const family: string[] = [];
  const variantVersion: number[][] = [];
  for (const segment of variant === '' ? [] : variant.split('-')) {
    const s = SEGMENT.exec(segment);
    if (!s || (s[1] === undefined && s[2] !== undefined)) {
      // A bare number or an odd segment (`1.2.3-1`, `x86_64`) is part of the family's name as written.
      family.push(segment);
      continue;
    }
    family.push(s[1] ?? '');
    if (s[2] !== undefined) variantVersion.push(s[2].split('.').map(Number));
  }
  return {
    tag,
    numbers,
    release: parts.join('.'),
    ...(pre ? { pre } : {}),
    variant,
    family: family.join('-'),
    variantVersion,
  };
}

/** Orders numbers lexicographically; a prefix sorts first (`3` < `3.3` < `3.3.6`). */
export function compareNumbers(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const PRE_RANK = ['dev', 'snapshot', 'nightly', 'ea', 'pre', 'preview', 'a', 'alpha', 'b', 'beta', 'rc'];

/** alpha < beta < rc, then by the number; any pre-release sorts before the release. */
function comparePre(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  const split = (p: string) => {
    const m = /^([A-Za-z]+)\.?(.*)$/.exec(p)!;
    return { rank: PRE_RANK.indexOf(m[1].toLowerCase()), n: m[2].split('.').filter(Boolean).map(Number) };
  };
  const x = split(a);
  const y = split(b);
  return x.rank - y.rank || compareNumbers(x.n, y.n);
}

/** Orders version tags of one family: numbers, then pre-release before release. */
export function compareVersions(a: VersionTag, b: VersionTag): number {
  return compareNumbers(a.numbers, b.numbers) || comparePre(a.pre, b.pre);
}

/** A newer version of the tag in use. */
export interface NewerVersion {
  kind: NewerKind;
  /** The tag to name: the newest release of that kind, as precise as upstream publishes it (`3.3.6`). */
  tag: string;
  /** Its numbers as text (`3.3.6`), pre-release included when there is one. */
  version: string;
  /** The moving tag of that release at the precision in use (`3.3` for a user of `2.7`), when upstream has one. */
  line?: string;
}

export interface NewerOptions extends ParseOptions {
  /** Tags to leave out, as globs on the whole tag (`*` any run of characters, `?` one): `*-windowsservercore*`. */
  readonly ignore?: readonly string[];
  /** Count pre-releases as candidates (they are, regardless, when the tag in use is one). @default false */
  readonly prereleases?: boolean;
}

export interface NewerFinding {
  /** The tag in use. */
  tag: string;
  /** Undefined when the tag in use is no version: nothing is compared. */
  inUse?: VersionTag;
  /** Where a moving tag in use stands now: the newest release inside its line (`2.7.8` for `2.7`). */
  current?: string;
  /** At most one per kind: patch, minor, major, variant (the order of the report line). */
  newer: NewerVersion[];
}

const text = (v: VersionTag) => `${v.release}${v.pre ? `-${v.pre}` : ''}`;
const sameNumbers = (a: readonly number[], b: readonly number[]) => compareNumbers(a, b) === 0;

/**
 * The newest patch, minor and major releases beyond the tag in use, among `tags` (a repository's tag list), and
 * the line's own tag on a newer variant version; see the file comment for what "beyond" means.
 */
export function newerVersions(
  inUseTag: string,
  tags: Iterable<string>,
  options: NewerOptions = {},
): NewerFinding {
  const inUse = parseVersionTag(inUseTag, options);
  if (!inUse) return { tag: inUseTag, newer: [] };
  const ignore = (options.ignore ?? []).map(globToRegExp);
  const withPre = options.prereleases === true || inUse.pre !== undefined;
  const family: VersionTag[] = [];
  for (const t of tags) {
    if (ignore.some((r) => r.test(t))) continue;
    const v = parseVersionTag(t, options);
    if (!v || v.family !== inUse.family || (v.pre && !withPre)) continue;
    family.push(v);
  }
  const own = JSON.stringify(inUse.variantVersion);
  /** The tag to name for a version: the user's variant version if upstream has it, else the newest. */
  const pick = (vs: VersionTag[]) =>
    vs.find((v) => JSON.stringify(v.variantVersion) === own) ??
    [...vs].sort((a, b) => compareVariant(b, a))[0];
  const byVersion = new Map<string, VersionTag[]>();
  for (const v of family) byVersion.set(text(v), [...(byVersion.get(text(v)) ?? []), v]);
  const versions = [...byVersion.values()].map(pick).sort((a, b) => compareVersions(b, a)); // newest first

  const u = inUse.numbers;
  const p = u.length;
  const beyond = (v: VersionTag) => compareVersions(v, inUse) > 0;
  const kinds: [NewerKind, (v: VersionTag) => boolean][] = [
    [
      'patch',
      (v) =>
        p >= 3 &&
        sameNumbers(v.numbers.slice(0, 2), u.slice(0, 2)) &&
        // A release of the pre-release in use counts as its patch (3.4.0 for 3.4.0-rc1).
        (v.numbers.length >= 3 || v.pre !== undefined),
    ],
    ['minor', (v) => p >= 2 && v.numbers[0] === u[0] && v.numbers.length >= 2 && v.numbers[1] > u[1]],
    ['major', (v) => v.numbers[0] > u[0]],
  ];
  const newer: NewerVersion[] = [];
  for (const [kind, test] of kinds) {
    const found = versions.find((v) => test(v) && beyond(v));
    if (!found) continue;
    const lineNumbers = found.numbers.slice(0, p);
    const line = pick(
      family.filter((v) => v.numbers.length === p && sameNumbers(v.numbers, lineNumbers) && !v.pre),
    );
    newer.push({
      kind,
      tag: found.tag,
      version: text(found),
      ...(line && line.tag !== found.tag ? { line: line.tag } : {}),
    });
  }
  // The line's own tag on a newer variant version: `20-alpine3.21` beside `20-alpine3.20`.
  if (inUse.variantVersion.length > 0) {
    const frozen = family
      .filter((v) => sameNumbers(v.numbers, u) && v.pre === inUse.pre && compareVariant(v, inUse) > 0)
      .sort((a, b) => compareVariant(b, a))[0];
    if (frozen) newer.push({ kind: 'variant', tag: frozen.tag, version: text(frozen) });
  }
  const current =
    p < 3
      ? versions.find(
          (v) => v.numbers.length > p && sameNumbers(v.numbers.slice(0, p), u) && v.pre === undefined,
        )
      : undefined;
  return { tag: inUseTag, inUse, ...(current ? { current: text(current) } : {}), newer };
}

function compareVariant(a: VersionTag, b: VersionTag): number {
  for (let i = 0; i < Math.max(a.variantVersion.length, b.variantVersion.length); i++) {
    const c = compareNumbers(a.variantVersion[i] ?? [], b.variantVersion[i] ?? []);
    if (c !== 0) return c;
  }
  return 0;
}

/** `newer: 2.7.8 (patch), 3.3.6 (major)`; '' when there is nothing newer. */
export function describeNewer(newer: readonly NewerVersion[]): string {
  if (newer.length === 0) return '';
  return `newer: ${newer.map((n) => `${n.tag} (${n.kind}${n.line ? `, tag ${n.line}` : ''})`).join(', ')}`;
}

/** Ordered from the most to the least disruptive: what `--fail-on newer-<kind>` counts as at least <kind>. */
export const NEWER_SEVERITY: Record<Exclude<NewerKind, 'variant'>, number> = { patch: 1, minor: 2, major: 3 };

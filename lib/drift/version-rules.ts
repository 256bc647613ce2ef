/*
 * Which upstream repositories are watched for newer versions, per vault repository prefix, and how. Plain data and
 * pure functions with no imports, so that the infrastructure validates its props and context with the same code the
 * Lambda and the CLI apply.
 */

/** The watch for the images under one vault repository prefix. */
export interface VersionWatchRule {
  /**
   * Upstream repositories to watch, as globs on `registry/repository` (`*` any run of characters, `?` one):
   * `docker.io/library/*`, `registry.example.com/base/node`. `[]` watches none (turns the watch off for the prefix).
   * @default ['*'] (every upstream base the prefix's images are built on)
   */
  readonly upstreams?: readonly string[];
  /** Tags never reported, as globs on the tag: `*-windowsservercore*`, `3.4.*`. @default none */
  readonly ignore?: readonly string[];
  /** Hours between two listings of an upstream repository's tags (and checks of a candidate's platforms). @default 24 */
  readonly intervalHours?: number;
  /** Count pre-releases (`3.4.0-rc1`) as newer versions. @default false */
  readonly prereleases?: boolean;
  /** Read date tags (`20240115`, `2024.01.15`) as versions. @default false */
  readonly dates?: boolean;
}

/** Vault repository prefix (`""` for every repository; the longest matching prefix applies) → its watch. */
export type VersionWatchRules = Readonly<Record<string, VersionWatchRule>>;

export const VERSION_WATCH_DEFAULTS = {
  /** Every upstream base of every repository, listed daily, releases only. */
  rules: { '': {} } as VersionWatchRules,
  intervalHours: 24,
  /** Docker Hub's tag listings are not pulls, but a daily list is plenty for release cadences of days and weeks. */
  minIntervalHours: 1,
  /** The Upstream Lambda sends the newer-versions digest at most this often. */
  digestDays: 7,
};

/** What applies to one upstream repository, merged over the rules of the vault repositories built on it. */
export interface VersionWatchSettings {
  ignore: string[];
  intervalHours: number;
  prereleases: boolean;
  dates: boolean;
}

/** A glob on a whole name; anything but `*` (any run of characters) and `?` (one) is literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** The rule of a vault repository: the longest matching prefix, or none. */
export function ruleFor(rules: VersionWatchRules, repository: string): VersionWatchRule | undefined {
  const prefix = Object.keys(rules)
    .filter((p) => repository.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : rules[prefix];
}

/**
 * The settings for an upstream repository (`registry/repository`) used by `repositories`, or undefined when no
 * rule watches it. Several teams' rules merge so that nobody misses what they asked for: a tag is ignored only when
 * every watching rule ignores it, the shortest interval wins, and pre-releases or dates count when any rule asks.
 */
export function settingsFor(
  rules: VersionWatchRules,
  upstream: string,
  repositories: readonly string[],
): VersionWatchSettings | undefined {
  const watching = [...new Set(repositories)]
    .map((r) => ruleFor(rules, r))
    .filter((r): r is VersionWatchRule => r !== undefined)
    .filter((r) => (r.upstreams ?? ['*']).some((u) => globToRegExp(u).test(upstream)));
  if (watching.length === 0) return undefined;
  const ignores = watching.map((r) => r.ignore ?? []);
  return {
    ignore: ignores[0].filter((p) => ignores.every((list) => list.includes(p))),
    intervalHours: Math.min(...watching.map((r) => r.intervalHours ?? VERSION_WATCH_DEFAULTS.intervalHours)),
    prereleases: watching.some((r) => r.prereleases === true),
    dates: watching.some((r) => r.dates === true),
  };
}

const KEYS = new Set(['upstreams', 'ignore', 'intervalHours', 'prereleases', 'dates']);

/**
 * Every problem with a rules value (from a prop, context or an environment variable), each naming `name` and the
 * entry; empty when it is valid.
 */
export function versionRulesProblems(name: string, value: unknown): string[] {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [
      `${name} must be an object of repository prefix → { upstreams, ignore, intervalHours, prereleases, dates }, got ${JSON.stringify(value)}`,
    ];
  for (const [prefix, rule] of Object.entries(value as Record<string, unknown>)) {
    const at = `${name}[${JSON.stringify(prefix)}]`;
    if (prefix !== '' && !/^[a-z0-9][a-z0-9._/-]*$/.test(prefix))
      problems.push(
        `${name} key ${JSON.stringify(prefix)} is not '' (every repository) or a repository name prefix (lowercase letters, digits, '.', '_', '-', '/')`,
      );
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
      problems.push(`${at} must be an object, got ${JSON.stringify(rule)}`);
      continue;
    }
    const r = rule as Record<string, unknown>;
    for (const key of Object.keys(r))
      if (!KEYS.has(key))
        problems.push(`${at} has an unknown key ${JSON.stringify(key)} (known: ${[...KEYS].join(', ')})`);
    for (const key of ['upstreams', 'ignore'])
      if (
        r[key] !== undefined &&
        (!Array.isArray(r[key]) || (r[key] as unknown[]).some((s) => typeof s !== 'string' || s === ''))
      )
        problems.push(`${at}.${key} must be a list of non-empty glob strings, got ${JSON.stringify(r[key])}`);
    const hours = r.intervalHours;
    if (
      hours !== undefined &&
      (typeof hours !== 'number' ||
        !Number.isInteger(hours) ||
        hours < VERSION_WATCH_DEFAULTS.minIntervalHours)
    )
      problems.push(
        `${at}.intervalHours must be a whole number of hours of at least ${VERSION_WATCH_DEFAULTS.minIntervalHours}, got ${JSON.stringify(hours)}`,
      );
    for (const key of ['prereleases', 'dates'])
      if (r[key] !== undefined && typeof r[key] !== 'boolean')
        problems.push(`${at}.${key} must be true or false, got ${JSON.stringify(r[key])}`);
  }
  return problems;
}

import { Token } from 'aws-cdk-lib';
import { Reference } from '../oci/reference';

/** Thrown when construct props or app context are invalid; lists every problem found, one per line. */
export class ImageVaultConfigError extends Error {
  constructor(
    readonly scope: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid ${scope}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ImageVaultConfigError';
  }
}

/** Collects problems so that all of them are reported together, then throws once. */
export class Problems {
  private readonly list: string[] = [];

  /** Records one problem: a sentence naming the prop or key and its value. */
  add(problem: string): void {
    this.list.push(problem);
  }

  /** Throws an ImageVaultConfigError listing every problem, if there is any; `scope` names what was checked. */
  throwIfAny(scope: string): void {
    if (this.list.length > 0) throw new ImageVaultConfigError(scope, this.list);
  }
}

/** Object Lock modes of the vault bucket; 'off' creates the bucket without Object Lock. */
export const OBJECT_LOCK_MODES = ['off', 'governance', 'compliance'] as const;
/** One of OBJECT_LOCK_MODES. */
export type ObjectLockMode = (typeof OBJECT_LOCK_MODES)[number];

/** '*' protects every repository; anything else is an ECR repository name prefix. */
export const ALL_REPOSITORIES = '*';

/** Characters ECR allows in repository names; a prefix may stop anywhere, e.g. after `team-` or `team/`. */
const REPOSITORY_PREFIX = /^[a-z0-9][a-z0-9._/-]*$/;
/** Deliberately simple: one @, no spaces, a dot in the domain. SNS rejects the rest at deploy time anyway. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** A key prefix inside the bucket: path segments without leading/trailing slash. */
const KEY_PREFIX = /^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/;

const show = (v: unknown) => JSON.stringify(v);

/** `['*']` alone, or distinct ECR repository name prefixes; not empty. */
export function checkRepositories(problems: Problems, name: string, repositories: readonly string[]): void {
  if (repositories.length === 0) {
    problems.add(`${name} is empty: use ['${ALL_REPOSITORIES}'] for every repository, or name prefixes`);
    return;
  }
  if (repositories.includes(ALL_REPOSITORIES) && repositories.length > 1) {
    problems.add(
      `${name} ${show(repositories)} mixes '${ALL_REPOSITORIES}' with prefixes: '*' alone covers all`,
    );
  }
  const seen = new Set<string>();
  for (const r of repositories) {
    if (r === ALL_REPOSITORIES) continue;
    if (typeof r !== 'string' || !REPOSITORY_PREFIX.test(r) || r.length > 256) {
      problems.add(
        `${name} entry ${show(r)} is not an ECR repository name prefix (lowercase letters, digits, '.', '_', '-', '/'; starting with a letter or digit)`,
      );
    } else if (seen.has(r)) {
      problems.add(`${name} lists ${show(r)} twice`);
    }
    seen.add(r);
  }
}

/** Each entry looks like an e-mail address. */
export function checkEmails(problems: Problems, name: string, emails: readonly string[]): void {
  for (const e of emails) {
    if (typeof e !== 'string' || !EMAIL.test(e))
      problems.add(`${name} entry ${show(e)} is not an e-mail address`);
  }
}

/** A known Object Lock mode; days only with a mode other than 'off', then a whole number of days. */
export function checkObjectLock(
  problems: Problems,
  names: { mode: string; days: string },
  mode: unknown,
  days: number | undefined,
): void {
  if (!OBJECT_LOCK_MODES.includes(mode as ObjectLockMode)) {
    problems.add(
      `${names.mode} ${show(mode)} must be one of ${OBJECT_LOCK_MODES.map((m) => `'${m}'`).join(', ')}`,
    );
    return;
  }
  if (days === undefined) return;
  if (mode === 'off') {
    problems.add(
      `${names.days} (${days}) is set but ${names.mode} is 'off': set ${names.mode} too, or drop it`,
    );
  } else {
    checkInteger(problems, names.days, days, 1, 36500);
  }
}

/** A whole number from `min` to `max` (a token passes: its value is known only at deployment). */
export function checkInteger(
  problems: Problems,
  name: string,
  value: number,
  min: number,
  max: number,
): void {
  if (Token.isUnresolved(value)) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.add(`${name} ${show(value)} must be a whole number from ${min} to ${max}`);
  }
}

/** '' or S3 key path segments without leading or trailing '/'. */
export function checkKeyPrefix(problems: Problems, name: string, prefix: string): void {
  if (prefix === '') return;
  if (typeof prefix !== 'string' || !KEY_PREFIX.test(prefix) || prefix.length > 512) {
    problems.add(
      `${name} ${show(prefix)} must be '' or path segments like 'vault' or 'team/vault' (no leading or trailing '/')`,
    );
  }
}

/** Candidate bases: repository prefix ('' for all) → image references, each parseable, none empty. */
export function checkCandidateBases(problems: Problems, name: string, candidates: unknown): void {
  if (candidates === undefined) return;
  if (typeof candidates !== 'object' || candidates === null || Array.isArray(candidates)) {
    problems.add(`${name} must be an object of repository prefix → list of image references`);
    return;
  }
  for (const [prefix, refs] of Object.entries(candidates as Record<string, unknown>)) {
    if (prefix !== '' && (!REPOSITORY_PREFIX.test(prefix) || prefix.length > 256)) {
      problems.add(
        `${name} key ${show(prefix)} is not '' (every repository) or an ECR repository name prefix (lowercase letters, digits, '.', '_', '-', '/')`,
      );
    }
    if (!Array.isArray(refs) || refs.length === 0) {
      problems.add(`${name}[${show(prefix)}] must be a non-empty list of image references`);
      continue;
    }
    for (const r of refs as unknown[]) {
      if (typeof r !== 'string') {
        problems.add(`${name}[${show(prefix)}] entry ${show(r)} is not a string`);
        continue;
      }
      try {
        Reference.parse(r);
      } catch {
        problems.add(
          `${name}[${show(prefix)}] entry ${show(r)} is not an image reference like 'docker.io/library/ruby:2.7'`,
        );
      }
    }
  }
}

/** Where the CloudTrail management events the identity rule needs come from. */
export const PROVENANCE_TRAIL_MODES = ['create', 'existing'] as const;
/** One of PROVENANCE_TRAIL_MODES. */
export type ProvenanceTrailMode = (typeof PROVENANCE_TRAIL_MODES)[number];

/** provenanceRetentionDays: only with Object Lock on, and never shorter than the bucket's default retention. */
export function checkProvenanceRetention(
  problems: Problems,
  objectLock: unknown,
  objectLockDays: number | undefined,
  days: number | undefined,
): void {
  if (days === undefined) return;
  if (objectLock === 'off') {
    problems.add(
      `provenanceRetentionDays (${days}) is set but objectLock is 'off': records can only be locked in a bucket with Object Lock`,
    );
    return;
  }
  if (objectLockDays !== undefined && Number.isInteger(days) && days < objectLockDays) {
    problems.add(
      `provenanceRetentionDays (${days}) is shorter than objectLockDays (${objectLockDays}): a record must stay locked at least as long as what it describes`,
    );
    return;
  }
  checkInteger(problems, 'provenanceRetentionDays', days, 1, 36500);
}

/** 'create' or 'existing', when set. */
export function checkProvenanceTrail(problems: Problems, name: string, mode: unknown): void {
  if (mode === undefined) return;
  if (!(PROVENANCE_TRAIL_MODES as readonly unknown[]).includes(mode)) {
    problems.add(`${name} ${show(mode)} must be 'create' or 'existing'`);
  }
}

import * as z from 'zod';

/*
 * The retention policy: which images of which repositories the vault keeps. A JSON file:
 *
 *   { "rules": [ { "prefix": "team/", "keepLast": 5, "keepWithin": "30d", "keepTags": ["prod", "release-*"] } ],
 *     "inUseWindow": "7d" }
 *
 * Any keep rule that matches keeps an image (OR), as restic's forget does. Whatever the rules say, each tag's newest
 * push, held images, images in use and the referrers of kept images are always kept. A repository no rule's prefix
 * matches is not touched.
 */

/** A bad policy: one line naming the file, the field and what is wrong. */
export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

const UNIT_MS: Record<string, number> = {
  y: 365 * 86_400_000,
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
};

/** `30d`, `12h`, `1y2w`, `90m`: years of 365 days, weeks, days, hours, minutes. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+[ywdhm])+$/.test(text)) return undefined;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([ywdhm])/g)) ms += Number(n) * UNIT_MS[unit];
  return ms;
}

const Duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, { message: 'is not a duration (e.g. 30d, 12h, 1y2w)' });

const TagPattern = z
  .string()
  .regex(/^[\w.*-]{1,128}$/, { message: 'is not a tag pattern (tag characters and *, e.g. release-*)' });

const RuleSchema = z
  .object({
    /** Repositories this rule governs: `team/` (everything under team), `team/app` (that one and below), `` (all). */
    prefix: z.string(),
    /** Keep the images of each tag's last N pushes. */
    keepLast: z.number().int().min(1).optional(),
    /** Keep images pushed (or snapshotted) within this long before the run. */
    keepWithin: Duration.optional(),
    /** Keep every image ever pushed under a tag matching one of these (`*` matches any characters). */
    keepTags: z.array(TagPattern).optional(),
    /** Keep images no tag ever named (snapshotted by digest). @default true */
    keepUntagged: z.boolean().optional(),
  })
  .strict()
  .refine((r) => r.keepLast !== undefined || r.keepWithin !== undefined || (r.keepTags?.length ?? 0) > 0, {
    message:
      "keeps nothing: give keepLast, keepWithin or keepTags (an empty rule would forget everything but each tag's newest push)",
  });

export const PolicySchema = z
  .object({
    rules: z.array(RuleSchema).min(1, { message: 'needs at least one rule' }),
    /** An image seen running within this window counts as in use. @default 7d */
    inUseWindow: Duration.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.rules.forEach((r, i) => {
      if (seen.has(r.prefix))
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'prefix'],
          message: `"${r.prefix}" is given twice`,
        });
      seen.add(r.prefix);
    });
  });

export type RetentionRule = z.infer<typeof RuleSchema>;
export type RetentionPolicy = z.infer<typeof PolicySchema>;

export const DEFAULT_IN_USE_WINDOW = '7d';

/** Parses and checks a policy; `source` names it in the one-line error (the file's path). */
export function parsePolicy(text: string, source: string): RetentionPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PolicyError(`${source}: not JSON: ${(e as Error).message}`);
  }
  const problems = policyProblems(raw);
  if (problems.length > 0) throw new PolicyError(`${source}: ${problems.join('; ')}`);
  return PolicySchema.parse(raw);
}

/**
 * Every problem of a parsed policy, each naming the field and its value (`rules[0].keepWithin "30x": is not a
 * duration…`); none for a good one. The infrastructure checks a policy given as a prop or context with it at synth.
 */
export function policyProblems(raw: unknown): string[] {
  const parsed = PolicySchema.safeParse(raw);
  if (parsed.success) return [];
  return parsed.error.issues.map((i) => {
    const at = i.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    const value = valueAt(raw, i.path);
    return `${at || '(policy)'}${value === undefined ? '' : ` ${JSON.stringify(value)}`}: ${i.message}`;
  });
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v = raw;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return typeof v === 'object' ? undefined : v;
}

/** The rule for a repository: the longest prefix that matches it, on path boundaries (`team` matches `team/app`). */
export function ruleFor(policy: RetentionPolicy, repository: string): RetentionRule | undefined {
  let best: RetentionRule | undefined;
  for (const r of policy.rules) {
    const p = r.prefix.replace(/\/+$/, '');
    const match = p === '' || repository === p || repository.startsWith(`${p}/`);
    if (match && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best;
}

/** Whether a tag matches a keepTags pattern: `*` matches any run of characters, the rest literally. */
export function tagMatches(pattern: string, tag: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return re.test(tag);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

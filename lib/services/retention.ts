import {
  blobKey,
  forgetOf,
  Forgets,
  GraphWalker,
  Holds,
  imageId,
  type ImageGraph,
  type ImageRecord,
  type InUseSource,
  type Retention,
  type Vault,
} from '../content';
import type { Descriptor } from '../oci';
import {
  DEFAULT_IN_USE_WINDOW,
  parseDuration,
  ruleFor,
  tagMatches,
  type RetentionPolicy,
  type RetentionRule,
} from './retention-policy';

/*
 * Retention decides which images the vault forgets; it deletes nothing. A forget is a record appended to the vault
 * (lib/content/forgets.ts); `imagevault gc` later deletes the blobs no kept image needs. Two steps, as restic's forget
 * and prune: the plan is the dry run of the first, and shows what the second would free.
 */

export interface KeptImage {
  repository: string;
  digest: string;
  /** Every reason it is kept: held, in use, a tag's newest push, a keep rule, a referrer of a kept image… */
  reasons: string[];
}

export interface ForgetCandidate {
  repository: string;
  descriptor: Descriptor;
  /** The image record's lastSnapshotAt: the forget covers snapshots up to then. */
  lastSnapshotAt: string;
  /** The tags that ever pointed at it in this repository. */
  tags: string[];
  /** The rule's prefix. */
  rule: string;
  reason: string;
}

/** A blob the forgets would free that Object Lock keeps in the bucket anyway, until its retention ends. */
export interface LockedBlob {
  digest: string;
  size: number;
  mode: Retention['mode'];
  until: string;
}

export interface RetentionPlan {
  store: string;
  /** The time the rules were counted back from. */
  now: string;
  repositories: {
    repository: string;
    rule?: string;
    images: number;
    kept: number;
    forget: number;
    note?: string;
  }[];
  kept: KeptImage[];
  forget: ForgetCandidate[];
  /** Images forgotten by earlier runs (not counted again). */
  alreadyForgotten: number;
  /** The blobs only forgotten images need: what gc frees once it sweeps them (each blob counted once). */
  freed: { blobs: number; bytes: number };
  /** Of those, the ones Object Lock keeps until their retention ends: the bytes stay billed until then. */
  locked: LockedBlob[];
}

export interface RetentionOptions {
  /** What runs where. @default none (no image counts as in use) */
  readonly inUse?: InUseSource;
  /** The time rules count back from. @default now */
  readonly now?: Date;
  readonly onRepository?: (repository: string, done: number, total: number) => void;
}

interface Live {
  record: ImageRecord;
  id: string;
  graph: ImageGraph;
  reasons: string[];
}

/** What the policy would forget now, and what that frees. Reads only. */
export async function planRetention(
  vault: Vault,
  policy: RetentionPolicy,
  options: RetentionOptions = {},
): Promise<RetentionPlan> {
  const now = options.now ?? new Date();
  const forgets = await new Forgets(vault.store).newest();
  const held = await new Holds(vault.store).list({ held: true });
  const heldIds = new Map(held.map((h) => [imageId(h.repository, h.digest), h.current]));
  const windowMs = parseDuration(policy.inUseWindow ?? DEFAULT_IN_USE_WINDOW)!;
  const running = new Map<string, string>();
  for (const e of (await options.inUse?.inUse()) ?? []) {
    if (Date.parse(e.lastSeen) >= now.getTime() - windowMs) running.set(e.digest, e.where);
  }

  const walker = new GraphWalker(vault);
  const live: Live[] = [];
  const repositories: RetentionPlan['repositories'] = [];
  const tagsOf = new Map<string, string[]>();
  const forgetReason = new Map<string, string>();
  let alreadyForgotten = 0;
  const all = await vault.repositories();
  for (const [n, repository] of all.entries()) {
    options.onRepository?.(repository, n, all.length);
    const rule = ruleFor(policy, repository);
    const images: Live[] = [];
    for (const record of await vault.images(repository)) {
      if (forgetOf(record, forgets)) {
        alreadyForgotten++;
        continue;
      }
      const id = imageId(repository, record.descriptor.digest);
      images.push({ record, id, graph: await walker.graph(id, record.descriptor), reasons: [] });
    }
    const byDigest = new Map(images.map((i) => [i.record.descriptor.digest, i]));
    const keep = (digest: string, reason: string) => byDigest.get(digest)?.reasons.push(reason);
    for (const i of images) {
      const h = heldIds.get(i.id);
      if (h) i.reasons.push(`held since ${h.at} by ${h.by}: ${h.reason}`);
      for (const m of i.graph.manifests) {
        const where = running.get(m);
        if (where) i.reasons.push(`in use: ${where}`);
      }
      if (!rule) i.reasons.push('no retention rule for this repository');
    }
    if (rule) {
      for (const tag of await vault.tags(repository)) {
        const pushes = (await vault.history(repository, tag)).filter((o) => o.action === 'push');
        for (const p of pushes)
          tagsOf.set(imageId(repository, p.descriptor.digest), [
            ...(tagsOf.get(imageId(repository, p.descriptor.digest)) ?? []),
            tag,
          ]);
        keepByRule(rule, tag, pushes, now, keep);
      }
      for (const i of images) {
        if (
          rule.keepWithin &&
          Date.parse(i.record.lastSnapshotAt) >= now.getTime() - parseDuration(rule.keepWithin)!
        )
          i.reasons.push(`snapshotted ${i.record.lastSnapshotAt}, within ${rule.keepWithin}`);
        const tags = tagsOf.get(i.id) ?? [];
        if (tags.length === 0 && rule.keepUntagged !== false) i.reasons.push('never tagged (keepUntagged)');
        forgetReason.set(i.id, why(rule, tags));
      }
    }
    live.push(...images);
    repositories.push({
      repository,
      ...(rule ? { rule: rule.prefix } : {}),
      images: images.length,
      kept: 0,
      forget: 0,
    });
  }

  // Referrers of kept images and the parts of kept indexes are kept, across repositories, until nothing changes.
  for (let changed = true; changed;) {
    changed = false;
    const kept = live.filter((i) => i.reasons.length > 0);
    for (const i of live) {
      if (i.reasons.length > 0) continue;
      const by = kept.find(
        (k) =>
          (i.graph.subject !== undefined && k.graph.manifests.has(i.graph.subject)) ||
          (k.id !== i.id && k.graph.blobs.has(i.record.descriptor.digest)),
      );
      if (by) {
        i.reasons.push(
          i.graph.subject && by.graph.manifests.has(i.graph.subject)
            ? `referrer of kept ${by.id}`
            : `part of kept ${by.id}`,
        );
        changed = true;
      }
    }
  }

  // A rule that would leave a repository empty is refused for that repository (only possible without tags).
  for (const r of repositories) {
    const images = live.filter((i) => i.record.repository === r.repository);
    if (images.length > 0 && images.every((i) => i.reasons.length === 0)) {
      for (const i of images) i.reasons.push('refused: the rule would forget every image of the repository');
      r.note = 'the rule would forget every image: refused, nothing forgotten here';
    }
    r.kept = images.filter((i) => i.reasons.length > 0).length;
    r.forget = images.length - r.kept;
  }

  const kept = live.filter((i) => i.reasons.length > 0);
  const gone = live.filter((i) => i.reasons.length === 0);
  const keptBlobs = new Set(kept.flatMap((i) => [...i.graph.blobs.keys()]));
  const freed = new Map<string, number>();
  for (const i of gone) for (const [d, size] of i.graph.blobs) if (!keptBlobs.has(d)) freed.set(d, size);
  const locked: LockedBlob[] = [];
  for (const [digest, size] of freed) {
    const retention = (await vault.store.head(blobKey(digest)))?.retention;
    if (retention && retention.until.getTime() > now.getTime())
      locked.push({ digest, size, mode: retention.mode, until: retention.until.toISOString() });
  }
  return {
    store: vault.url,
    now: now.toISOString(),
    repositories,
    kept: kept.map((i) => ({
      repository: i.record.repository,
      digest: i.record.descriptor.digest,
      reasons: i.reasons,
    })),
    forget: gone.map((i) => ({
      repository: i.record.repository,
      descriptor: i.record.descriptor,
      lastSnapshotAt: i.record.lastSnapshotAt,
      tags: [...new Set(tagsOf.get(i.id) ?? [])].sort(),
      rule: ruleFor(policy, i.record.repository)!.prefix,
      reason: forgetReason.get(i.id) ?? 'no rule keeps it',
    })),
    alreadyForgotten,
    freed: { blobs: freed.size, bytes: [...freed.values()].reduce((a, b) => a + b, 0) },
    locked: locked.sort((a, b) => (a.until < b.until ? -1 : 1)),
  };
}

/** Marks what one tag's history keeps: its newest push always, the last N, everything within the window, matching tags. */
function keepByRule(
  rule: RetentionRule,
  tag: string,
  pushes: { descriptor: Descriptor; observedAt: string }[],
  now: Date,
  keep: (digest: string, reason: string) => void,
): void {
  if (pushes.length === 0) return;
  keep(pushes[pushes.length - 1].descriptor.digest, `newest push of :${tag}`);
  if (rule.keepLast)
    for (const p of pushes.slice(-rule.keepLast))
      keep(p.descriptor.digest, `among the last ${rule.keepLast} pushes of :${tag}`);
  const pattern = rule.keepTags?.find((t) => tagMatches(t, tag));
  if (pattern) for (const p of pushes) keep(p.descriptor.digest, `pushed as :${tag} (keepTags ${pattern})`);
  if (rule.keepWithin) {
    // Future-dated observations (a skewed clock) count as within: a duration rule never drops them.
    const since = now.getTime() - parseDuration(rule.keepWithin)!;
    for (const p of pushes)
      if (Date.parse(p.observedAt) >= since)
        keep(p.descriptor.digest, `pushed as :${tag} at ${p.observedAt}, within ${rule.keepWithin}`);
  }
}

function why(rule: RetentionRule, tags: string[]): string {
  const parts = [
    tags.length > 0
      ? `pushed as ${[...new Set(tags)].map((t) => `:${t}`).join(', ')}, never a tag's newest push`
      : 'never tagged',
    rule.keepLast ? `not among the last ${rule.keepLast}` : undefined,
    rule.keepWithin ? `older than ${rule.keepWithin}` : undefined,
    rule.keepTags?.length ? `no tag matching ${rule.keepTags.join(', ')}` : undefined,
    tags.length === 0 && rule.keepUntagged === false ? 'keepUntagged is false' : undefined,
    'not held, not in use, no kept image refers to it',
  ];
  return parts.filter(Boolean).join('; ');
}

export interface ApplyResult {
  plan: RetentionPlan;
  forgotten: number;
  /** Candidates left alone at the last moment, and why (held or snapshotted again since the plan). */
  skipped: { image: string; reason: string }[];
}

/**
 * Forgets what the plan says, checking each image once more just before its record is written: one held since the
 * plan, or snapshotted again (its record changed), is left alone. Appends only; erases nothing.
 */
export async function applyRetention(
  vault: Vault,
  policy: RetentionPolicy,
  options: RetentionOptions & { by: string },
): Promise<ApplyResult> {
  const plan = await planRetention(vault, policy, options);
  const holds = new Holds(vault.store);
  const forgets = new Forgets(vault.store);
  const skipped: ApplyResult['skipped'] = [];
  let forgotten = 0;
  for (const c of plan.forget) {
    const id = imageId(c.repository, c.descriptor.digest);
    if ((await holds.state(c.repository, c.descriptor.digest))?.held) {
      skipped.push({ image: id, reason: 'put on hold since the plan' });
      continue;
    }
    const now = await vault.image(c.repository, c.descriptor.digest);
    if (now?.lastSnapshotAt !== c.lastSnapshotAt) {
      skipped.push({ image: id, reason: 'snapshotted again since the plan' });
      continue;
    }
    await forgets.record({
      repository: c.repository,
      descriptor: c.descriptor,
      forgottenAt: new Date().toISOString(),
      upTo: c.lastSnapshotAt,
      reason: c.reason,
      rule: c.rule,
      by: options.by,
    });
    forgotten++;
  }
  return { plan, forgotten, skipped };
}

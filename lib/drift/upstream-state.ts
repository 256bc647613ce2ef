import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { UPSTREAM_PREFIX } from '../content/keys';
import { ObjectExistsError, type ObjectStore } from '../content/objectstore';
import { Digest, Reference } from '../oci';

/*
 * What the upstream watcher remembers, in the vault beside the tag history and just as append-only:
 *
 *   imagevault/upstream/<registry>/<repository>/_tags/<tag>/observations/<time>_<hex16>_<rand>.json
 *       one per digest CHANGE of the upstream tag (not one per check: an hourly check of an unchanged tag
 *       writes nothing), with the platform manifests of that digest once they were fetched;
 *   imagevault/upstream/<registry>/<repository>/_tags/<tag>/alerts/<old alg-hex>_<new alg-hex>.json
 *       one per old → new transition alerted; written create-only, so a transition is alerted once;
 *   imagevault/upstream/<registry>/<repository>/_tags/<tag>/diffs/<old alg-hex>_<new alg-hex>.json
 *       the layer and history diff of a transition, computed once (two manifests and two configs per platform)
 *       and read back while the drift persists.
 *
 * The reference is encoded as a path (registry host[:port], then the validated repository and tag), which is
 * readable in `aws s3 ls` and safe as a key: neither part can hold `..`, `?` or `_`-leading components.
 */
const UPSTREAM = UPSTREAM_PREFIX.replace(/\/$/, '');

export const UpstreamObservationSchema = z.object({
  reference: z.string(),
  digest: z.string(),
  mediaType: z.string().optional(),
  /** `os/arch[/variant]` → platform manifest digest; `*` for a single-manifest tag. Absent until fetched. */
  platforms: z.record(z.string(), z.string()).optional(),
  observedAt: z.string(),
  /** How the digest was learnt: HEAD, or GET + hash when the registry sent no Docker-Content-Digest. */
  via: z.enum(['head', 'get']),
});
export type UpstreamObservation = z.infer<typeof UpstreamObservationSchema>;

export const AlertedTransitionSchema = z.object({
  reference: z.string(),
  oldDigest: z.string(),
  newDigest: z.string(),
  alertedAt: z.string(),
});
export type AlertedTransition = z.infer<typeof AlertedTransitionSchema>;

export function upstreamPrefix(reference: string): string {
  const ref = Reference.parse(reference);
  if (!ref.tag || ref.digest)
    throw new TypeError(`upstream reference ${reference} must name a tag and no digest`);
  return `${UPSTREAM}/${ref.registry}/${ref.repository}/_tags/${ref.tag}/`;
}

const timeKey = (iso: string) => iso.replace(/[-:]/g, '').replace('.', '');
const digestKey = (digest: string) => {
  const d = Digest.parse(digest);
  return `${d.algorithm}-${d.hex}`;
};

/** Where an upstream base tag stands against the digest an image was built on (UpstreamLog.statusOf). */
export interface UpstreamStatus {
  reference: string;
  status: 'unchanged' | 'platform-unchanged' | 'moved' | 'unchecked' | 'pinned';
  /** The tag's digest now, by the watcher's last recorded change, and when that change was first seen. */
  digest?: string;
  observedAt?: string;
  /** The tag's manifest for the image's platform now, when the watcher fetched it. */
  platformDigest?: string;
  detail: string;
}

/** The watcher's append-only log on the vault's ObjectStore: observations, alerted transitions, kept diffs. */
export class UpstreamLog {
  constructor(private readonly store: ObjectStore) {}

  /** Every observation of an upstream tag, oldest first. */
  async observations(reference: string): Promise<UpstreamObservation[]> {
    const out: UpstreamObservation[] = [];
    for await (const obj of this.store.list(`${upstreamPrefix(reference)}observations/`)) {
      const bytes = await this.store.getBytes(obj.key);
      if (bytes) out.push(UpstreamObservationSchema.parse(JSON.parse(bytes.toString('utf8'))));
    }
    return out.sort((a, b) => (a.observedAt < b.observedAt ? -1 : a.observedAt > b.observedAt ? 1 : 0));
  }

  async latest(reference: string): Promise<UpstreamObservation | undefined> {
    return (await this.observations(reference)).pop();
  }

  /** Appends an observation under a unique key, create-only. */
  async record(obs: UpstreamObservation): Promise<void> {
    const full = UpstreamObservationSchema.parse(obs);
    const key = `${upstreamPrefix(full.reference)}observations/${timeKey(full.observedAt)}_${Digest.parse(full.digest).hex.slice(0, 16)}_${randomBytes(4).toString('hex')}.json`;
    await this.store.putBytes(key, json(full), { ifNoneMatch: true, contentType: 'application/json' });
  }

  async alerted(reference: string, oldDigest: string, newDigest: string): Promise<boolean> {
    return (await this.store.head(this.alertKey(reference, oldDigest, newDigest))) !== undefined;
  }

  /** The diff computed for a transition, if one was kept. */
  async keptDiff<T>(reference: string, oldDigest: string, newDigest: string): Promise<T | undefined> {
    const bytes = await this.store.getBytes(this.diffKey(reference, oldDigest, newDigest));
    return bytes ? (JSON.parse(bytes.toString('utf8')) as { diff: T }).diff : undefined;
  }

  /** Keeps a transition's diff: the content of two digests never changes, so neither does their diff. */
  async keepDiff(reference: string, oldDigest: string, newDigest: string, diff: unknown): Promise<void> {
    await this.store.putBytes(this.diffKey(reference, oldDigest, newDigest), json({ diff }), {
      contentType: 'application/json',
    });
  }

  /** Records an alerted transition; false when it was already recorded (by a concurrent run, say). */
  async markAlerted(t: AlertedTransition): Promise<boolean> {
    try {
      await this.store.putBytes(this.alertKey(t.reference, t.oldDigest, t.newDigest), json(t), {
        ifNoneMatch: true,
        contentType: 'application/json',
      });
      return true;
    } catch (e) {
      if (e instanceof ObjectExistsError) return false;
      throw e;
    }
  }

  /** Every transition alerted for an upstream tag, oldest first. */
  async transitions(reference: string): Promise<AlertedTransition[]> {
    const out: AlertedTransition[] = [];
    for await (const obj of this.store.list(`${upstreamPrefix(reference)}alerts/`)) {
      const bytes = await this.store.getBytes(obj.key);
      if (bytes) out.push(AlertedTransitionSchema.parse(JSON.parse(bytes.toString('utf8'))));
    }
    return out.sort((a, b) => (a.alertedAt < b.alertedAt ? -1 : a.alertedAt > b.alertedAt ? 1 : 0));
  }

  /**
   * Whether an upstream tag still points where it did when an image was built on it, by what the watcher has
   * recorded (it writes on changes only, so `observedAt` is when the current digest was first seen, not the last
   * check). `built` is the base as the image records it: the platform manifest and, for a multi-platform tag, the
   * index digest.
   */
  async statusOf(
    reference: string,
    platform: string,
    built: { manifest: string; index?: string },
  ): Promise<UpstreamStatus> {
    let ref: Reference;
    try {
      ref = Reference.parse(reference);
    } catch {
      return { reference, status: 'unchecked', detail: 'not a reference the watcher can check' };
    }
    if (!ref.tag) return { reference, status: 'pinned', detail: 'named by digest: it cannot move' };
    const tagged = ref.digest
      ? Reference.parse(`${ref.registry}/${ref.repository}:${ref.tag}`).toString()
      : reference;
    const latest = await this.latest(tagged);
    if (!latest)
      return {
        reference: tagged,
        status: 'unchecked',
        detail:
          'the upstream check has not recorded this tag yet (imagevault drift check, or the Upstream Lambda)',
      };
    const current = { digest: latest.digest, observedAt: latest.observedAt };
    if (latest.digest === (built.index ?? built.manifest))
      return {
        reference: tagged,
        status: 'unchanged',
        ...current,
        detail: 'still the digest the image was built on',
      };
    const platformNow = latest.platforms?.[platform] ?? latest.platforms?.['*'];
    if (platformNow === built.manifest)
      return {
        reference: tagged,
        status: 'platform-unchanged',
        ...current,
        detail: `the tag moved, but its ${platform} manifest is still the one the image was built on`,
      };
    return {
      reference: tagged,
      status: 'moved',
      ...current,
      ...(platformNow ? { platformDigest: platformNow } : {}),
      detail: `the tag moved since the image was built: rebuild on it, or pin FROM ${tagged.replace(/:[^:/]+$/, '')}@${built.index ?? built.manifest}`,
    };
  }

  private diffKey(reference: string, oldDigest: string, newDigest: string): string {
    return `${upstreamPrefix(reference)}diffs/${digestKey(oldDigest)}_${digestKey(newDigest)}.json`;
  }

  private alertKey(reference: string, oldDigest: string, newDigest: string): string {
    return `${upstreamPrefix(reference)}alerts/${digestKey(oldDigest)}_${digestKey(newDigest)}.json`;
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 2) + '\n');
}

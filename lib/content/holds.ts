import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { Digest, validateRepository } from '../oci';
import { HOLDS_PREFIX } from './keys';
import { putNewRecord, type ObjectStore } from './objectstore';

/*
 * Legal holds: `imagevault/holds/<repository>/_digests/<alg>-<hex>/<time>_<rand>.json`, one record per hold or
 * release, written create-only and never changed. An image is held while its newest record is a hold. Retention
 * never forgets a held image and GC never deletes what it references, whatever the policy says (restic#3459: a
 * protection that depends on a tag and a matching keep rule is one typo from loss).
 */

export const HoldRecordSchema = z.object({
  action: z.enum(['hold', 'release']),
  repository: z.string(),
  digest: z.string(),
  /** What the user named: `repo:tag` (resolved to its digest when held) or `repo@digest`. */
  reference: z.string(),
  by: z.string(),
  reason: z.string(),
  at: z.string(),
});
export type HoldRecord = z.infer<typeof HoldRecordSchema>;

/** One image's hold state: its newest record, and every record oldest first. */
export interface HoldState {
  repository: string;
  digest: string;
  held: boolean;
  current: HoldRecord;
  records: HoldRecord[];
}

const imagePrefix = (repository: string, digest: string) => {
  const d = Digest.parse(digest);
  return `${HOLDS_PREFIX}${repository}/_digests/${d.algorithm}-${d.hex}/`;
};

/** Key-safe, sortable time: 20261123T134500123Z. */
const timeKey = (iso: string) => iso.replace(/[-:]/g, '').replace('.', '');

export class Holds {
  constructor(private readonly store: ObjectStore) {}

  /** Appends a hold or release record. Keys are unique (time, random) and written create-only. */
  async record(record: Omit<HoldRecord, 'at'> & { at?: string }): Promise<HoldRecord> {
    validateRepository(record.repository);
    const full = HoldRecordSchema.parse({ ...record, at: new Date(record.at ?? Date.now()).toISOString() });
    const key = `${imagePrefix(full.repository, full.digest)}${timeKey(full.at)}_${full.action}_${randomBytes(4).toString('hex')}.json`;
    await putNewRecord(this.store, key, full, 'hold record');
    return full;
  }

  /** The hold state of one image, or undefined when it was never held. */
  async state(repository: string, digest: string): Promise<HoldState | undefined> {
    return (await this.read(imagePrefix(repository, digest)))[0];
  }

  /** Every image ever held, with its state; `held` only: those held now. */
  async list(options: { held?: boolean } = {}): Promise<HoldState[]> {
    const all = await this.read(HOLDS_PREFIX);
    return options.held ? all.filter((s) => s.held) : all;
  }

  /** `repository@digest` of every image held now. */
  async heldImages(): Promise<Set<string>> {
    return new Set((await this.list({ held: true })).map((s) => `${s.repository}@${s.digest}`));
  }

  private async read(prefix: string): Promise<HoldState[]> {
    const byImage = new Map<string, HoldRecord[]>();
    for await (const obj of this.store.list(prefix)) {
      const bytes = await this.store.getBytes(obj.key);
      if (!bytes) continue;
      const r = HoldRecordSchema.parse(JSON.parse(bytes.toString('utf8')));
      const id = `${r.repository}@${r.digest}`;
      byImage.set(id, [...(byImage.get(id) ?? []), r]);
    }
    return [...byImage.values()]
      .map((records) => {
        // Keys sort by time; the time in the record decides, the key's order breaks ties.
        const sorted = records.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
        const current = sorted[sorted.length - 1];
        return {
          repository: current.repository,
          digest: current.digest,
          held: current.action === 'hold',
          current,
          records: sorted,
        };
      })
      .sort((a, b) => (a.current.at < b.current.at ? -1 : 1));
  }
}

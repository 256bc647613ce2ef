import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { DescriptorSchema, Digest, validateRepository } from '../oci';
import { FORGETS_PREFIX } from './keys';
import { putNewRecord, type ObjectStore } from './objectstore';
import type { ImageRecord } from './vault';

/*
 * What retention forgot: `imagevault/retention/forgotten/<repository>/_images/<alg>-<hex>/<time>_<rand>.json`, one
 * create-only record per forget. Nothing is erased: the image record and its tag history stay, and read as forgotten.
 * A forget covers the snapshots up to `upTo` (the image record's lastSnapshotAt that retention saw), so a snapshot of
 * the same digest made later brings the image back instead of being forgotten with it.
 */

export const ForgetRecordSchema = z.object({
  repository: z.string(),
  descriptor: DescriptorSchema,
  forgottenAt: z.string(),
  /** The image record's lastSnapshotAt when it was forgotten: later snapshots are not covered. */
  upTo: z.string(),
  /** Why no rule kept it, in words. */
  reason: z.string(),
  /** The policy rule (its repository prefix) that applied. */
  rule: z.string(),
  by: z.string(),
});
export type ForgetRecord = z.infer<typeof ForgetRecordSchema>;

const repositoryPrefix = (repository: string) => `${FORGETS_PREFIX}${repository}/_images/`;
const timeKey = (iso: string) => iso.replace(/[-:]/g, '').replace('.', '');

export class Forgets {
  constructor(private readonly store: ObjectStore) {}

  async record(record: ForgetRecord): Promise<ForgetRecord> {
    validateRepository(record.repository);
    const full = ForgetRecordSchema.parse(record);
    const d = Digest.parse(full.descriptor.digest);
    const key = `${repositoryPrefix(full.repository)}${d.algorithm}-${d.hex}/${timeKey(full.forgottenAt)}_${randomBytes(4).toString('hex')}.json`;
    await putNewRecord(this.store, key, full, 'forget record');
    return full;
  }

  /** The newest forget of each digest of a repository (every repository when none is named). */
  async newest(repository?: string): Promise<Map<string, ForgetRecord>> {
    if (repository) validateRepository(repository);
    const out = new Map<string, ForgetRecord>();
    for await (const obj of this.store.list(repository ? repositoryPrefix(repository) : FORGETS_PREFIX)) {
      const bytes = await this.store.getBytes(obj.key);
      if (!bytes) continue;
      const r = ForgetRecordSchema.parse(JSON.parse(bytes.toString('utf8')));
      const id = imageId(r.repository, r.descriptor.digest);
      const seen = out.get(id);
      if (!seen || seen.upTo < r.upTo) out.set(id, r);
    }
    return out;
  }
}

/** `repository@digest`: how holds, forgets and plans name one image. */
export const imageId = (repository: string, digest: string) => `${repository}@${digest}`;

/** The forget that covers this image record, if any: none when the image was snapshotted again after it. */
export function forgetOf(
  record: Pick<ImageRecord, 'repository' | 'descriptor' | 'lastSnapshotAt'>,
  forgets: Map<string, ForgetRecord>,
): ForgetRecord | undefined {
  const f = forgets.get(imageId(record.repository, record.descriptor.digest));
  return f && new Date(f.upTo).getTime() >= new Date(record.lastSnapshotAt).getTime() ? f : undefined;
}

import * as z from 'zod';
import { UPSTREAM_PREFIX } from '../content/keys';
import type { ObjectStore } from '../content/objectstore';
import { Reference } from '../oci';

/*
 * The tag list of an upstream repository and the platforms of the candidates reported from it, kept in the vault
 * beside the upstream watcher's state so that a listing is paid once per interval, whoever asks (the hourly
 * Lambda, `imagevault drift check`, `imagevault base`):
 *
 *   imagevault/upstream/<registry>/<repository>/_versions.json
 *
 * One object per repository, overwritten: a tag list is a snapshot, not a history. `_` starts no repository path
 * component, so the key cannot collide with a repository named like it.
 */

export const TagPlatformsSchema = z.object({
  /** The tag's digest when its platforms were read. */
  digest: z.string(),
  /** `os/arch[/variant]` of each image the tag offers (attestations left out). */
  platforms: z.array(z.string()),
  checkedAt: z.string(),
});
export type TagPlatforms = z.infer<typeof TagPlatformsSchema>;

export const TagListSchema = z.object({
  /** `registry/repository`, e.g. `docker.io/library/ruby`. */
  repository: z.string(),
  listedAt: z.string(),
  /** Listing requests it took (pages). */
  pages: z.number().int().nonnegative(),
  tags: z.array(z.string()),
  /** Tag → its platforms, for the candidates reported since the listing. */
  platforms: z.record(z.string(), TagPlatformsSchema).default({}),
});
export type TagList = z.infer<typeof TagListSchema>;

/** `docker.io/library/ruby` (or `ruby`) → its cache key. */
export function tagListKey(repository: string): string {
  const ref = Reference.parse(`${repository}:latest`);
  return `${UPSTREAM_PREFIX}${ref.registry}/${ref.repository}/_versions.json`;
}

/** Tag lists on an ObjectStore (the vault's). */
export class TagListCache {
  constructor(private readonly store: ObjectStore) {}

  /** The cached list, or undefined when there is none or it cannot be read (it is then listed again). */
  async get(repository: string): Promise<TagList | undefined> {
    const bytes = await this.store.getBytes(tagListKey(repository));
    if (!bytes) return undefined;
    try {
      return TagListSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch {
      return undefined; // a cache written by another version, or torn: a listing replaces it
    }
  }

  async put(list: TagList): Promise<void> {
    await this.store.putBytes(tagListKey(list.repository), Buffer.from(JSON.stringify(list) + '\n'), {
      contentType: 'application/json',
    });
  }
}

/** Whether something done at `at` is still fresh `intervalHours` later. */
export function fresh(at: string | undefined, intervalHours: number, now: Date): boolean {
  if (!at) return false;
  const t = Date.parse(at);
  return Number.isFinite(t) && now.getTime() - t < intervalHours * 3_600_000 && t <= now.getTime();
}

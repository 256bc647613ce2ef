import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci';

/*
 * The small interfaces the copy engine works over (after oras-go's content package). A registry repository and
 * the vault are both Targets: snapshot and restore are the same graph copy in two directions.
 */

/** Reads content by descriptor. The stream is the raw bytes; whoever stores them verifies them. */
export interface Fetcher {
  fetch(desc: Descriptor): Promise<Readable>;
}

/**
 * Stores content by descriptor. An implementation must refuse (reject with DigestMismatchError) content that does
 * not hash to `desc.digest` or is not `desc.size` bytes, and must leave nothing behind under that digest when it
 * does. Content that is already there counts as success.
 */
export interface Pusher {
  push(desc: Descriptor, content: Readable): Promise<void>;
}

export interface ReadOnlyStorage extends Fetcher {
  exists(desc: Descriptor): Promise<boolean>;
}

export interface Storage extends ReadOnlyStorage, Pusher {}

/** Lists the manifests whose `subject` is `desc`: signatures, SBOMs, attestations. */
export interface ReferrerLister {
  referrers(desc: Descriptor): Promise<Descriptor[]>;
}

export function isReferrerLister(x: unknown): x is ReferrerLister {
  return typeof (x as ReferrerLister | undefined)?.referrers === 'function';
}

/** Resolves a tag (or digest) to the descriptor of what it points at. */
export interface Resolver {
  resolve(reference: string): Promise<Descriptor>;
}

/** Points a tag at content already pushed. */
export interface Tagger {
  tag(desc: Descriptor, tag: string): Promise<void>;
}

export interface Target extends Storage, Resolver, Tagger {}

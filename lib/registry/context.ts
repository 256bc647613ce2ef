import { Digest, validateTag } from '../oci';
import type { Transport } from './transport';

/** What the modules behind a Repository share: the registry's transport, the repository and its token scopes. */
export interface RepositoryContext {
  readonly transport: Transport;
  readonly registry: string;
  readonly name: string;
  readonly pullScopes: readonly string[];
  readonly pushScopes: readonly string[];
}

export function manifestPath(repository: string, reference: string): string {
  // Checked here because it becomes a path segment: `../` or `?` in a "tag" would address something else.
  if (isDigest(reference)) Digest.parse(reference);
  else validateTag(reference);
  return `/v2/${repository}/manifests/${reference}`;
}

/** A reference is a digest (`alg:hex`) or a tag, which cannot hold a colon. */
export function isDigest(reference: string): boolean {
  return reference.includes(':');
}

import { Digest, validateRepository, validateTag } from '../oci';

/** A vault image: `repo:tag` or `repo@digest`. A registry host in front is dropped: the vault keys by repository. */
export function parseVaultRef(value: string): { repository: string; tag?: string; digest?: string } {
  let rest = value;
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = Digest.parse(rest.slice(at + 1)).toString();
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    validateTag(tag);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost'))
    parts.shift();
  const repository = parts.join('/');
  validateRepository(repository);
  return { repository, tag: digest ? undefined : tag, digest };
}

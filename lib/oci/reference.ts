import { Digest } from './digest';
import { InvalidReferenceError } from './errors';

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub actually serves the distribution API: `docker.io` has no /v2/ endpoint. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const MAX_NAME = 255;

/** Throws unless `repository` is a valid repository path (`a/b-c/d_e`). */
export function validateRepository(repository: string): void {
  if (repository.length === 0 || repository.length > MAX_NAME) {
    throw new InvalidReferenceError(`invalid repository "${repository}": length must be 1..${MAX_NAME}`);
  }
  for (const part of repository.split('/')) {
    if (!COMPONENT.test(part)) {
      throw new InvalidReferenceError(
        `invalid repository "${repository}": component "${part}" must be lowercase alphanumerics separated by . _ __ or -`,
      );
    }
  }
}

export function validateTag(tag: string): void {
  if (!TAG.test(tag))
    throw new InvalidReferenceError(`invalid tag "${tag}": must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
}

function isDomain(part: string): boolean {
  if (part === 'localhost') return true;
  if (!part.includes('.') && !part.includes(':')) return false;
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+)(?::(\d+))?$/.exec(part);
  if (!m) return false;
  return m[1].startsWith('[') || m[1].split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/**
 * An image reference, `registry/repository[:tag][@digest]`, parsed once at the edge. Docker Hub short forms are
 * normalised (`ruby` → `docker.io/library/ruby`), so two spellings of the same image compare equal.
 */
export class Reference {
  private constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}

  static parse(value: string): Reference {
    if (value !== value.trim() || value.length === 0)
      throw new InvalidReferenceError(`invalid reference "${value}"`);
    let rest = value;
    let digest: string | undefined;
    const at = rest.indexOf('@');
    if (at >= 0) {
      digest = rest.slice(at + 1);
      rest = rest.slice(0, at);
      try {
        Digest.parse(digest);
      } catch (e) {
        throw new InvalidReferenceError(`invalid reference "${value}": ${(e as Error).message}`);
      }
    }
    let tag: string | undefined;
    const slash = rest.lastIndexOf('/');
    const colon = rest.lastIndexOf(':');
    if (colon > slash) {
      tag = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      try {
        validateTag(tag);
      } catch (e) {
        throw new InvalidReferenceError(`invalid reference "${value}": ${(e as Error).message}`);
      }
    }
    const parts = rest.split('/');
    let registry = DOCKER_HUB;
    if (parts.length > 1 && isDomain(parts[0])) registry = parts.shift()!;
    if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
    if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
    const repository = parts.join('/');
    try {
      validateRepository(repository);
    } catch (e) {
      throw new InvalidReferenceError(`invalid reference "${value}": ${(e as Error).message}`);
    }
    return new Reference(registry, repository, tag, digest);
  }

  static of(registry: string, repository: string, tagOrDigest?: string): Reference {
    validateRepository(repository);
    if (tagOrDigest === undefined) return new Reference(registry, repository);
    if (tagOrDigest.includes(':'))
      return new Reference(registry, repository, undefined, Digest.parse(tagOrDigest).toString());
    validateTag(tagOrDigest);
    return new Reference(registry, repository, tagOrDigest);
  }

  /** The string the registry API takes in `/manifests/<reference>`: the digest when there is one. */
  get reference(): string | undefined {
    return this.digest ?? this.tag;
  }

  /** `registry/repository`, the name without tag or digest. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  withTag(tag: string): Reference {
    validateTag(tag);
    return new Reference(this.registry, this.repository, tag, undefined);
  }

  withDigest(digest: string): Reference {
    return new Reference(this.registry, this.repository, this.tag, Digest.parse(digest).toString());
  }

  withRepository(repository: string): Reference {
    validateRepository(repository);
    return new Reference(this.registry, repository, this.tag, this.digest);
  }

  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

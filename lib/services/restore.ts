import { copyGraph, type CopyEvent, type CopySummary } from '../copy';
import { NotInVaultError, type Vault } from '../content';
import type { Descriptor, Reference } from '../oci';
import type { Registries } from './registries';

export interface RestoreRequest {
  /** The image in the vault: repository with a tag or a digest. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
  /** For a tag: what it pointed at at this time. @default now */
  readonly at?: Date;
  /** Where to push. Its tag (if any) is set after the whole graph is there; without one, the digest only. */
  readonly to: Reference;
  readonly dryRun?: boolean;
}

export interface RestoreOptions {
  readonly concurrency?: number;
  readonly onEvent?: (event: CopyEvent) => void;
}

export interface RestoreResult {
  source: string;
  destination: string;
  descriptor: Descriptor;
  copy: CopySummary;
  /** The digest the destination reports for what we pushed: equal to descriptor.digest, or we throw. */
  verifiedDigest?: string;
  dryRun: boolean;
}

export class RestoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RestoreError';
  }
}

/**
 * Restore: vault → registry, bit-for-bit. The manifest bytes pushed are the snapshot's bytes, so every digest is
 * the original; the destination is read back afterwards to prove it.
 */
export class Restorer {
  constructor(
    private readonly vault: Vault,
    private readonly registries: Registries,
    private readonly options: RestoreOptions = {},
  ) {}

  async resolve(request: Pick<RestoreRequest, 'repository' | 'tag' | 'digest' | 'at'>): Promise<Descriptor> {
    if (request.digest) return this.vault.resolveDigest(request.repository, request.digest);
    if (!request.tag) throw new NotInVaultError(`restore of ${request.repository} needs a tag or a digest`);
    return (await this.vault.resolveTag(request.repository, request.tag, request.at)).descriptor;
  }

  async restore(request: RestoreRequest): Promise<RestoreResult> {
    const descriptor = await this.resolve(request);
    const source = `${request.repository}${request.digest ? `@${request.digest}` : `:${request.tag}`}`;
    const dest = this.registries.get(request.to.registry).repository(request.to.repository);
    const destination = request.to.withDigest(descriptor.digest).toString();
    const { registry, repository } = request.to;
    const copy = await copyGraph(this.vault, dest, descriptor, {
      concurrency: this.options.concurrency,
      dryRun: request.dryRun,
      label: `restore ${source} (${descriptor.digest}) to ${destination}`,
      onEvent: (e) => {
        if (e.type === 'done' || e.type === 'skip' || e.type === 'mount') {
          this.registries.noteBlob(registry, repository, e.descriptor.digest);
        }
        this.options.onEvent?.(e);
      },
      // A layer shared with an image restored earlier in this run is mounted, not sent again.
      mount: async (desc) => {
        const from = this.registries.blobHome(registry, desc.digest, repository);
        return from !== undefined && (await dest.mount(desc, from));
      },
    });
    if (request.dryRun) return { source, destination, descriptor, copy, dryRun: true };
    if (request.to.tag) {
      const bytes = await this.vault.fetchManifest(descriptor);
      await dest.pushManifest(request.to.tag, bytes, descriptor.mediaType);
    }
    const check = await dest.resolve(request.to.tag ?? descriptor.digest);
    if (check.digest !== descriptor.digest) {
      throw new RestoreError(
        `restore of ${source}: ${request.to.toString()} reports ${check.digest} after the push, expected ${descriptor.digest}`,
      );
    }
    return { source, destination, descriptor, copy, verifiedDigest: check.digest, dryRun: false };
  }
}

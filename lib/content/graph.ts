import { isManifest, parseManifest, subjectOf, successors, type Descriptor } from '../oci';
import type { Vault } from './vault';

/** What one image needs from the vault: every blob of its graph (manifests, configs, layers, referrers), by digest. */
export interface ImageGraph {
  /** digest → size, the image's own manifest included. */
  blobs: Map<string, number>;
  /** The manifests of the image itself (an index and its platforms), not of its referrers: what a workload may run. */
  manifests: Set<string>;
  /** The digest this image is a referrer of (a signature's, an SBOM's subject), if any. */
  subject?: string;
}

/** Thrown when a graph cannot be read whole: whoever deletes must then delete nothing. */
export class GraphReadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GraphReadError';
  }
}

/**
 * Reads image graphs from the vault: index → manifests → config and layers, and the referrers of every manifest
 * (signatures, SBOMs, attestations), as snapshot copied them. Manifests are read once per walker.
 */
export class GraphWalker {
  private readonly parsed = new Map<string, { children: Descriptor[]; subject?: string }>();

  constructor(private readonly vault: Vault) {}

  /** The image's graph. Any manifest that cannot be read or parsed fails it, naming the image and the manifest. */
  async graph(image: string, root: Descriptor): Promise<ImageGraph> {
    const blobs = new Map<string, number>();
    const manifests = new Set<string>();
    const visit = async (desc: Descriptor, own: boolean): Promise<void> => {
      if (blobs.has(desc.digest)) return;
      blobs.set(desc.digest, desc.size);
      if (!isManifest(desc.mediaType)) return;
      if (own) manifests.add(desc.digest);
      const node = await this.read(image, desc);
      for (const child of node.children) await visit(child, own);
      for (const r of await this.referrers(image, desc)) await visit(r, false);
    };
    await visit(root, true);
    return { blobs, manifests, subject: (await this.read(image, root)).subject };
  }

  private async read(image: string, desc: Descriptor): Promise<{ children: Descriptor[]; subject?: string }> {
    const seen = this.parsed.get(desc.digest);
    if (seen) return seen;
    let node;
    try {
      node = parseManifest(await this.vault.fetchManifest(desc), desc.mediaType);
    } catch (e) {
      throw new GraphReadError(
        `${image}: cannot read manifest ${desc.digest} from ${this.vault.url}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const out = { children: successors(node), subject: subjectOf(node)?.digest };
    this.parsed.set(desc.digest, out);
    return out;
  }

  private async referrers(image: string, desc: Descriptor): Promise<Descriptor[]> {
    try {
      return await this.vault.referrers(desc);
    } catch (e) {
      throw new GraphReadError(
        `${image}: cannot list the referrers of ${desc.digest} in ${this.vault.url}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
}

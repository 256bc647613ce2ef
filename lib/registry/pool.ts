import { RegistryClient, type RegistryClientOptions } from './client';

/**
 * One client per registry host, so auth tokens and scheme detection are shared by every image of a run. It also
 * remembers which repository of a registry received which blob during the run, so a later push of the same blob
 * into another repository can be a cross-repository mount instead of a transfer.
 */
export class Registries {
  private readonly clients = new Map<string, RegistryClient>();
  private readonly blobHomes = new Map<string, Map<string, string>>();

  constructor(private readonly options: RegistryClientOptions = {}) {}

  get(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      c = new RegistryClient(registry, this.options);
      this.clients.set(registry, c);
    }
    return c;
  }

  /** Records that `repository` on `registry` holds the blob `digest`. */
  noteBlob(registry: string, repository: string, digest: string): void {
    let homes = this.blobHomes.get(registry);
    if (!homes) this.blobHomes.set(registry, (homes = new Map()));
    homes.set(digest, repository);
  }

  /** A repository on `registry`, other than `except`, known to hold `digest`. */
  blobHome(registry: string, digest: string, except: string): string | undefined {
    const home = this.blobHomes.get(registry)?.get(digest);
    return home === except ? undefined : home;
  }
}

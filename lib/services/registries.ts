import { RegistryClient, type RegistryClientOptions } from '../registry';

/** One client per registry host, so auth tokens and scheme detection are shared by every image of a run. */
export class Registries {
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly options: RegistryClientOptions = {}) {}

  get(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      c = new RegistryClient(registry, this.options);
      this.clients.set(registry, c);
    }
    return c;
  }
}

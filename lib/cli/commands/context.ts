import type { Vault } from '../../content';
import type { Registries } from '../../services/registries';

/** The global options every command sees. */
export interface GlobalCommandOptions {
  store: string;
  json: boolean;
  insecure: boolean;
  concurrency: number;
}

/** What main.ts hands a command module: the parsed global options and the clients built from them. */
export interface CommandContext {
  opts(): GlobalCommandOptions;
  registries(): Registries;
  vault(): Promise<Vault>;
}

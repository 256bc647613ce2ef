import { DirectoryObjectStore } from './directory';
import type { ObjectStore } from './objectstore';
import { parseStoreUrl } from './store-url';
import type { Timeouts } from './timeouts';
import { Vault } from './vault';

export interface OpenOptions {
  /** For an S3 store: request and idle timeouts of its client. @default the S3 store's (lib/content/timeouts.ts) */
  readonly timeouts?: Timeouts;
}

/**
 * Opens a store by URL: `file:///path` (or a plain path) for a directory, `s3://bucket/prefix` for S3 (endpoint
 * from AWS_ENDPOINT_URL_S3, credentials from the standard chain).
 */
export async function openObjectStore(url: string, options: OpenOptions = {}): Promise<ObjectStore> {
  const location = parseStoreUrl(url);
  if (location.kind === 's3') {
    // Loaded only for S3: the AWS SDK is a sizeable share of the CLI's start-up, and file:// never needs it.
    const { S3ObjectStore } = await import('./s3');
    return S3ObjectStore.fromUrl(url, undefined, options.timeouts);
  }
  return new DirectoryObjectStore(location.path);
}

export async function openVault(url: string, options: OpenOptions = {}): Promise<Vault> {
  const vault = new Vault(await openObjectStore(url, options));
  await vault.init();
  return vault;
}

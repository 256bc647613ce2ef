import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectoryObjectStore } from './directory';
import type { ObjectStore } from './objectstore';
import { Vault } from './vault';

/**
 * Opens a store by URL: `file:///path` (or a plain path) for a directory, `s3://bucket/prefix` for S3 (endpoint
 * from AWS_ENDPOINT_URL_S3, credentials from the standard chain).
 */
export async function openObjectStore(url: string): Promise<ObjectStore> {
  if (url.startsWith('s3://')) {
    // Loaded only for S3: the AWS SDK is a sizeable share of the CLI's start-up, and file:// never needs it.
    const { S3ObjectStore } = await import('./s3');
    return S3ObjectStore.fromUrl(url);
  }
  if (url.startsWith('file://')) return new DirectoryObjectStore(fileURLToPath(url));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new Error(`unsupported store URL "${url}": use file:///path or s3://bucket/prefix`);
  }
  return new DirectoryObjectStore(path.resolve(url));
}

export async function openVault(url: string): Promise<Vault> {
  const vault = new Vault(await openObjectStore(url));
  await vault.init();
  return vault;
}

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A store URL that names no usable store: empty, relative where it must be absolute, a bucket or prefix S3 refuses. */
export class StoreUrlError extends Error {
  constructor(
    readonly url: string,
    reason: string,
    message = `--store ${JSON.stringify(url)}: ${reason}`,
  ) {
    super(message);
    this.name = 'StoreUrlError';
  }
}

export type StoreLocation =
  { kind: 'directory'; path: string } | { kind: 's3'; bucket: string; prefix: string };

/** S3's bucket naming rules (general purpose buckets): 3–63 characters, lower case, digits, dots and hyphens. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses a store URL once, strictly, before anything is written: `file:///absolute/path`, a plain path (absolute,
 * or relative to the working directory), or `s3://bucket[/prefix]`. Refused: an empty value (it would make the
 * working directory a vault), a `file:` URL that is not absolute (`file:relative` was a folder of that name), any
 * other scheme, and S3 prefixes with empty, `.` or `..` segments (keys beginning `../` are legal in S3 and would be
 * a vault nobody finds).
 */
export function parseStoreUrl(url: string): StoreLocation {
  if (url.trim() === '')
    throw new StoreUrlError(url, 'empty: give file:///path, a directory, or s3://bucket/prefix');
  if (/^s3:/i.test(url)) return parseS3(url);
  if (/^file:/i.test(url)) {
    if (!/^file:\/\/(localhost)?\//i.test(url))
      throw new StoreUrlError(
        url,
        'a file: URL takes an absolute path (file:///abs/path); give a relative directory as a plain path',
      );
    return { kind: 'directory', path: fileURLToPath(url.replace(/^file:\/\/localhost\//i, 'file:///')) };
  }
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url);
  if (scheme)
    throw new StoreUrlError(
      url,
      `unsupported store URL (scheme "${scheme[1]}:"): use file:///path or s3://bucket/prefix`,
    );
  return { kind: 'directory', path: path.resolve(url) };
}

function parseS3(url: string): StoreLocation {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw notS3(url);
  const [, bucket, rest = ''] = m;
  if (!BUCKET.test(bucket) || bucket.includes('..'))
    throw new StoreUrlError(
      url,
      `"${bucket}" is not an S3 bucket name (3–63 characters: a-z, 0-9, dots, hyphens)`,
    );
  // Slashes around the prefix are only separators (s3://bucket//team/ is s3://bucket/team); inside it they are not.
  const prefix = rest.replace(/^\/+|\/+$/g, '');
  if (prefix !== '') {
    const bad = prefix.split('/').find((segment) => segment === '' || segment === '.' || segment === '..');
    if (bad !== undefined)
      throw new StoreUrlError(
        url,
        `the prefix "${prefix}" has ${bad === '' ? 'an empty' : `a "${bad}"`} segment`,
      );
  }
  return { kind: 's3', bucket, prefix };
}

/** For a place that takes only S3: what it was given instead. */
export function notS3(url: string): StoreUrlError {
  return new StoreUrlError(
    url,
    '',
    `not an S3 URL: ${JSON.stringify(url)} (expected s3://bucket or s3://bucket/prefix)`,
  );
}

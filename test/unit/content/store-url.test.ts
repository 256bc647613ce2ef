import * as path from 'node:path';
import { parseStoreUrl, StoreUrlError } from '../../../lib/content/store-url';

describe('Function: parseStoreUrl', () => {
  it.each([
    ['file:///srv/vault', { kind: 'directory', path: '/srv/vault' }],
    ['file://localhost/srv/vault', { kind: 'directory', path: '/srv/vault' }],
    ['/srv/vault', { kind: 'directory', path: '/srv/vault' }],
    ['vault', { kind: 'directory', path: path.resolve('vault') }],
    ['s3://my-vault', { kind: 's3', bucket: 'my-vault', prefix: '' }],
    ['s3://my-vault/', { kind: 's3', bucket: 'my-vault', prefix: '' }],
    ['s3://my-vault//team/', { kind: 's3', bucket: 'my-vault', prefix: 'team' }],
    ['s3://my.vault-1/team-a/images/', { kind: 's3', bucket: 'my.vault-1', prefix: 'team-a/images' }],
  ])('reads %s', (url, expected) => {
    expect(parseStoreUrl(url)).toEqual(expected);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['file:relative', /absolute path/],
    ['file:./vault', /absolute path/],
    ['file://server/share/vault', /absolute path/],
    ['http://example.com/vault', /unsupported store URL \(scheme "http:"\)/],
    ['gs://bucket/x', /unsupported store URL \(scheme "gs:"\)/],
    ['s3://', /not an S3 URL/],
    ['s3:///prefix', /not an S3 URL/],
    ['s3://Upper', /not an S3 bucket name/],
    ['s3://ab', /not an S3 bucket name/],
    ['s3://a..b', /not an S3 bucket name/],
    ['s3://bucket/../../x', /"\.\." segment/],
    ['s3://bucket/team/./x', /"\." segment/],
    ['s3://bucket/a//b', /empty segment/],
  ])('refuses %j', (url, reason) => {
    expect(() => parseStoreUrl(url)).toThrow(StoreUrlError);
    expect(() => parseStoreUrl(url)).toThrow(reason);
  });
});

/**
 * What one `imagevault snapshot` asks of an S3 vault (radosgw, versioned bucket), request by request, seen through a
 * recording proxy: a repeat snapshot of an unchanged image writes nothing but its session, its image record and the
 * layout index, and reads what it already read once in the run no more.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { LayoutBuilder, pushLayout } from '../../fixtures';
import { startFaultyProxy, type FaultyProxy, type ProxiedRequest } from '../testbed/faulty-proxy';
import { s3env, s3ProcessEnv, testBucket, testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

const MiB = 1024 * 1024;

describe('imagevault snapshot: S3 requests (radosgw through a recording proxy)', () => {
  const bucket = `requests-${Date.now()}`;
  const saved = { ...process.env };
  let client: S3Client;
  let proxy: FaultyProxy;
  let image: string;

  beforeAll(async () => {
    ({ client } = await testBucket(bucket));
    proxy = await startFaultyProxy(new URL(s3env().endpoint).host);
    Object.assign(process.env, s3ProcessEnv(), { AWS_ENDPOINT_URL_S3: `http://${proxy.address}` });
    const dir = tempDir('imagevault-requests-');
    const layout = new LayoutBuilder(dir);
    await layout.image({ name: 'one', layers: [await layout.layer({ sizeBytes: 6 * MiB })] });
    image = `${testbed().registry}/requests/one:1`;
    await pushLayout(dir, 'one', image);
  });

  afterAll(async () => {
    process.env = saved;
    await proxy.close();
    client.destroy();
  });

  /** The requests of one snapshot, keys relative to the store (`<METHOD> <key>`, a listing as `LIST <prefix>`). */
  async function snapshot(store: string): Promise<string[]> {
    proxy.reset();
    const run = await cli('--store', `s3://${bucket}/${store}`, 'snapshot', image);
    expect(run.code).toBe(0);
    return proxy.requests.map((r) => label(r, store));
  }

  const label = (r: ProxiedRequest, store: string): string => {
    const url = new URL(r.url, 'http://s3');
    const key = decodeURIComponent(url.pathname).slice(`/${bucket}/`.length);
    if (key === '') return `LIST ${(url.searchParams.get('prefix') ?? '').slice(store.length + 1)}`;
    return `${r.method} ${key.slice(store.length + 1)}`;
  };

  const count = (requests: string[], pattern: RegExp) => requests.filter((r) => pattern.test(r)).length;

  it('a repeat snapshot appends no provenance entry and reads each history entry once', async () => {
    // Prepare
    await snapshot('vault');

    // Act
    const again = await snapshot('vault');

    // Assess: the base detected again is the same base, so the provenance log has nothing new to say
    expect(again.filter((r) => /^PUT imagevault\/provenance\//.test(r))).toEqual([]);
    // base detection, recording the push and the layout index each list the tag's history, reading it once
    const entryReads = again.filter((r) => /^GET imagevault\/repositories\/requests\/one\/_tags\//.test(r));
    expect(entryReads).toEqual([...new Set(entryReads)]);
    expect(count(again, /^LIST imagevault\/repositories\/requests\/one\/_tags\/1\/$/)).toBe(3);
    // the head hint's entry is found by the tail's LIST, not a HEAD; the indexed marker is looked at once
    expect(count(again, /^HEAD imagevault\/provenance\/.*\/@log\//)).toBe(0);
    expect(count(again, /^HEAD imagevault\/provenance\/.*\/_digests\/indexed\.json$/)).toBe(1);
    // 49 before these savings; what is left is each needed once (see the README's Performance section)
    expect(again.length).toBeLessThanOrEqual(40);
  });

  it('a first snapshot looks at the provenance log and its indexed marker once each', async () => {
    const first = await snapshot('fresh');

    expect(count(first, /^HEAD imagevault\/provenance\/.*\/_digests\/indexed\.json$/)).toBe(1);
    expect(count(first, /^PUT imagevault\/provenance\/.*\/@log\//)).toBe(1);
    // 56 before: a HEAD of the indexed marker, and three GETs of history entries already read or just written
    expect(first.length).toBeLessThanOrEqual(52);
  });
});

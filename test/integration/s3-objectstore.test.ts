/**
 * S3ObjectStore against the test bed's real radosgw (Ceph): multipart streaming, abort on a failing body,
 * conditional writes on versioned and unversioned buckets, pagination, prefixes. The one behaviour radosgw lacks
 * (412 on a versioned bucket, as AWS S3 answers) is covered with a client mock at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  NotFound,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { ObjectExistsError, ObjectNotFoundError, WriteConflictError } from '../../lib/content/objectstore';
import { S3ObjectStore, S3ObjectStoreError, s3ClientConfig } from '../../lib/content/s3';
import { s3env } from '../testbed/env';

const MiB = 1024 * 1024;

/** A client for the test bed, with a count of the commands it completed (to see multipart and pagination happen). */
function rgwClient(): { client: S3Client; sent: Map<string, number> } {
  const env = s3env();
  const client = new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    ...s3ClientConfig({ AWS_ENDPOINT_URL_S3: env.endpoint }),
  });
  const sent = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const name = context.commandName ?? 'unknown';
      sent.set(name, (sent.get(name) ?? 0) + 1);
      return out;
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return { client, sent };
}

/**
 * A body of `size` bytes made on demand, 1 MiB per read (so what was pulled from it is known), optionally failing
 * once `failAt` bytes were produced.
 */
function source(size: number, opts: { failAt?: number; onChunk?: (produced: number) => void } = {}) {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  const failure = new Error('source connection reset');
  let produced = 0;
  const stream = new Readable({
    read() {
      if (opts.failAt !== undefined && produced >= opts.failAt) {
        this.destroy(failure);
        return;
      }
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(MiB, size - produced);
      const chunk = Buffer.allocUnsafe(n);
      block.copy(chunk, 0, 0, n);
      if (n >= 4) chunk.writeUInt32BE(produced / MiB, 0); // every MiB differs, so misordered parts would show
      produced += n;
      hash.update(chunk);
      opts.onChunk?.(produced);
      this.push(chunk);
    },
  });
  return { stream, failure, sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('Class: S3ObjectStore (radosgw)', () => {
  const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const plain = `iv-s3store-${run}`;
  const versioned = `iv-s3store-v-${run}`;
  let client: S3Client;

  beforeAll(async () => {
    client = rgwClient().client;
    await client.send(new CreateBucketCommand({ Bucket: plain }));
    await client.send(new CreateBucketCommand({ Bucket: versioned }));
    await client.send(
      new PutBucketVersioningCommand({ Bucket: versioned, VersioningConfiguration: { Status: 'Enabled' } }),
    );
  });

  afterAll(() => client?.destroy());

  describe('Method: putStream / get', () => {
    it('round-trips a 40 MiB stream in parts without reading ahead more than the parts in flight', async () => {
      // Prepare
      const { client: c, sent } = rgwClient();
      const allocate = jest.spyOn(Buffer, 'allocUnsafe');
      const partSize = 5 * MiB;
      const queueSize = 2;
      const store = new S3ObjectStore({ bucket: plain, prefix: 'big', client: c, partSize, queueSize });
      let maxAhead = 0;
      const body = source(40 * MiB, {
        onChunk: (produced) => {
          maxAhead = Math.max(maxAhead, produced - (sent.get('UploadPartCommand') ?? 0) * partSize);
        },
      });

      // Act
      await store.putStream('layer', body.stream, 40 * MiB);

      // Assess
      expect(sent.get('CreateMultipartUploadCommand')).toBe(1);
      expect(sent.get('UploadPartCommand')).toBe(8);
      expect(sent.get('CompleteMultipartUploadCommand')).toBe(1);
      // the store's part buffers (queueSize of them by default: the parts in flight and the one being filled share
      // them) + one chunk buffered in the source; never the whole object
      expect(maxAhead).toBeLessThanOrEqual(partSize * queueSize + 2 * MiB);
      // and in the same few part buffers throughout, not a new one per part (which only a full GC frees)
      expect(allocate.mock.calls.filter(([n]) => n >= partSize).length).toBeLessThanOrEqual(queueSize);
      allocate.mockRestore();
      expect(await store.head('layer')).toEqual({ key: 'layer', size: 40 * MiB });
      const head = await c.send(new HeadObjectCommand({ Bucket: plain, Key: 'big/layer' }));
      expect(head.ETag).toMatch(/-8"$/); // a multipart object's ETag counts its parts
      expect(await sha256Of(await store.get('layer'))).toEqual({ sha256: body.sha256(), size: 40 * MiB });
      c.destroy();
    });

    it("shares the store's part buffers among streams at once, and a failing stream gives its own back", async () => {
      // Prepare: four streams of three parts each through a store with one whole buffer, and a fifth that fails while
      // it holds that buffer (kept, it would leave the others waiting for ever)
      const { client: c, sent } = rgwClient();
      const allocate = jest.spyOn(Buffer, 'allocUnsafe');
      const partSize = 5 * MiB;
      const store = new S3ObjectStore({
        bucket: plain,
        prefix: 'shared',
        client: c,
        partSize,
        queueSize: 2,
        partBuffers: 1,
      });
      const bodies = [0, 1, 2, 3].map(() => source(12 * MiB));
      const broken = source(40 * MiB, { failAt: 6 * MiB });

      // Act
      const puts = bodies.map((b, i) => store.putStream(`layer-${i}`, b.stream));
      const failed = store.putStream('broken', broken.stream);

      // Assess: every stream that could finish did, through the one buffer
      await expect(failed).rejects.toBe(broken.failure);
      await Promise.all(puts);
      expect(allocate.mock.calls.filter(([n]) => n >= partSize).length).toBe(1);
      allocate.mockRestore();
      expect(sent.get('CompleteMultipartUploadCommand')).toBe(4);
      for (const [i, b] of bodies.entries())
        expect(await sha256Of(await store.get(`layer-${i}`))).toEqual({ sha256: b.sha256(), size: 12 * MiB });
      expect(await store.head('broken')).toBeUndefined();
      c.destroy();
    });

    it('sends a body smaller than one part as a single PutObject', async () => {
      const { client: c, sent } = rgwClient();
      const store = new S3ObjectStore({ bucket: plain, prefix: 'small', client: c });
      const body = source(3 * MiB + 7);

      await store.putStream('blob', body.stream);

      expect(sent.get('PutObjectCommand')).toBe(1);
      expect(sent.get('CreateMultipartUploadCommand')).toBeUndefined();
      expect(await sha256Of(await store.get('blob'))).toEqual({ sha256: body.sha256(), size: 3 * MiB + 7 });
      c.destroy();
    });

    it('leaves no object and no multipart upload when the body fails after more than one part', async () => {
      // Prepare
      const { client: c, sent } = rgwClient();
      const store = new S3ObjectStore({
        bucket: plain,
        prefix: 'broken',
        client: c,
        partSize: 5 * MiB,
        queueSize: 2,
      });
      const body = source(40 * MiB, { failAt: 17 * MiB });

      // Act
      const put = store.putStream('layer', body.stream);

      // Assess: the caller gets the body's own error, after the upload was aborted
      await expect(put).rejects.toBe(body.failure);
      expect(sent.get('UploadPartCommand')).toBeGreaterThanOrEqual(2);
      expect(sent.get('AbortMultipartUploadCommand')).toBe(1);
      expect(sent.get('CompleteMultipartUploadCommand')).toBeUndefined();
      expect(await store.head('layer')).toBeUndefined();
      const uploads = await c.send(new ListMultipartUploadsCommand({ Bucket: plain, Prefix: 'broken/' }));
      expect(uploads.Uploads ?? []).toEqual([]);
      c.destroy();
    });

    it('leaves nothing when the body fails within the first part', async () => {
      const { client: c, sent } = rgwClient();
      const store = new S3ObjectStore({ bucket: plain, prefix: 'broken-early', client: c });
      const body = source(40 * MiB, { failAt: 2 * MiB });

      await expect(store.putStream('layer', body.stream)).rejects.toBe(body.failure);

      expect(sent.get('PutObjectCommand')).toBeUndefined();
      expect(sent.get('CreateMultipartUploadCommand')).toBeUndefined();
      expect(await store.head('layer')).toBeUndefined();
      c.destroy();
    });

    it('names bucket and key when S3 refuses, and releases the body', async () => {
      const store = new S3ObjectStore({ bucket: `${plain}-absent`, prefix: 'v', client, partSize: 5 * MiB });
      const body = source(40 * MiB);

      const put = store.putStream('blobs/x', body.stream);

      await expect(put).rejects.toBeInstanceOf(S3ObjectStoreError);
      await expect(put).rejects.toThrow(
        `upload to s3://${plain}-absent/v/blobs/x failed: HTTP 404 NoSuchBucket`,
      );
      expect(body.stream.destroyed).toBe(true);
    });

    it('honours AWS_ENDPOINT_URL_S3 when built from a URL alone', async () => {
      // Prepare: only the environment says where S3 is, as for the CLI
      const env = s3env();
      const saved = { ...process.env };
      Object.assign(process.env, {
        AWS_ENDPOINT_URL_S3: env.endpoint,
        AWS_ACCESS_KEY_ID: env.accessKeyId,
        AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
        AWS_REGION: env.region,
      });
      try {
        const store = S3ObjectStore.fromUrl(`s3://${plain}/from-env`);
        const body = source(20 * MiB);

        // Act: a multipart stream, which fails on radosgw unless checksums are WHEN_REQUIRED
        await store.putStream('blob', body.stream);

        // Assess
        expect(await sha256Of(await store.get('blob'))).toEqual({ sha256: body.sha256(), size: 20 * MiB });
        store.client.destroy();
      } finally {
        process.env = saved;
      }
    });
  });

  describe('Method: putBytes / getBytes / head', () => {
    it('round-trips small bytes with their content type', async () => {
      const store = new S3ObjectStore({ bucket: plain, prefix: 'bytes', client });

      await store.putBytes('index.json', Buffer.from('{"a":1}'), { contentType: 'application/json' });

      expect((await store.getBytes('index.json'))?.toString()).toBe('{"a":1}');
      expect(await store.head('index.json')).toEqual({ key: 'index.json', size: 7 });
      const head = await client.send(new HeadObjectCommand({ Bucket: plain, Key: 'bytes/index.json' }));
      expect(head.ContentType).toBe('application/json');
    });

    it('overwrites without ifNoneMatch', async () => {
      const store = new S3ObjectStore({ bucket: plain, prefix: 'bytes', client });
      await store.putBytes('tag', Buffer.from('one'));
      await store.putBytes('tag', Buffer.from('two'));
      expect((await store.getBytes('tag'))?.toString()).toBe('two');
    });

    it.each([
      ['an unversioned', () => plain],
      ['a versioned', () => versioned],
    ])(
      'refuses with ObjectExistsError on %s bucket when ifNoneMatch and the key exists',
      async (_, bucket) => {
        // Prepare
        const store = new S3ObjectStore({ bucket: bucket(), prefix: 'history', client });
        await store.putBytes('2024/snap.json', Buffer.from('first'), { ifNoneMatch: true });

        // Act
        const second = store.putBytes('2024/snap.json', Buffer.from('second'), { ifNoneMatch: true });

        // Assess
        await expect(second).rejects.toBeInstanceOf(ObjectExistsError);
        await expect(second).rejects.toMatchObject({ key: '2024/snap.json', store: store.url });
        expect((await store.getBytes('2024/snap.json'))?.toString()).toBe('first');
        const versions = await client.send(
          new ListObjectVersionsCommand({ Bucket: bucket(), Prefix: 'history/2024/snap.json' }),
        );
        expect(versions.Versions ?? []).toHaveLength(1);
      },
    );

    it('radosgw answers If-None-Match with 412 only on unversioned buckets (why putBytes checks with HEAD first)', async () => {
      const put = (Bucket: string) =>
        client.send(new PutObjectCommand({ Bucket, Key: 'quirk', Body: 'x', IfNoneMatch: '*' }));
      await put(plain);
      await put(versioned);

      await expect(put(plain)).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });
      await expect(put(versioned)).resolves.toBeDefined(); // AWS S3 would refuse this one too
    });

    it('reports a missing key as undefined (head, getBytes) or ObjectNotFoundError (get)', async () => {
      const store = new S3ObjectStore({ bucket: plain, prefix: 'nothing-here', client });

      expect(await store.head('blobs/sha256/00')).toBeUndefined();
      expect(await store.getBytes('blobs/sha256/00')).toBeUndefined();
      const get = store.get('blobs/sha256/00');
      await expect(get).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(get).rejects.toMatchObject({
        key: 'blobs/sha256/00',
        store: `s3://${plain}/nothing-here`,
      });
    });

    it('does not mistake a missing bucket for a missing key', async () => {
      const store = new S3ObjectStore({ bucket: `${plain}-absent`, client });

      const get = store.get('k');
      await expect(get).rejects.toBeInstanceOf(S3ObjectStoreError);
      await expect(get).rejects.toThrow(`GetObject s3://${plain}-absent/k failed: HTTP 404 NoSuchBucket`);
      await expect(store.putBytes('k', Buffer.from('x'))).rejects.toThrow(`s3://${plain}-absent/k`);
    });
  });

  describe('Method: list / listDirs', () => {
    const keys = [
      'blobs/sha256/aa',
      'blobs/sha256/ab',
      'blobs/sha256/b0',
      'index.json',
      'repos/alpine/tags/3.20',
      'repos/alpine/tags/latest',
      'repos/busybox/tags/1',
      'repos/nginx/history/2024/x.json',
      'repos/readme',
    ];
    let store: S3ObjectStore;
    let sent: Map<string, number>;

    beforeAll(async () => {
      let c: S3Client;
      ({ client: c, sent } = rgwClient());
      // pageSize 2 makes every listing below span several pages, as 1000+ keys would.
      store = new S3ObjectStore({ bucket: plain, prefix: 'tree', client: c, pageSize: 2 });
      await Promise.all(keys.map((k) => store.putBytes(k, Buffer.from(k))));
      // Neighbours that share the store prefix as a string but are not under it.
      await client.send(new PutObjectCommand({ Bucket: plain, Key: 'tree-old/index.json', Body: 'x' }));
      await client.send(new PutObjectCommand({ Bucket: plain, Key: 'treetop', Body: 'x' }));
    });

    afterAll(() => store.client.destroy());

    it('lists every key under the store prefix in order, across pages, relative to the prefix', async () => {
      sent.clear();
      const all = await collect(store.list(''));
      expect(all).toEqual(
        keys.map((key) => ({ key, size: Buffer.byteLength(key), lastModified: expect.any(Date) as unknown })),
      );
      expect(sent.get('ListObjectsV2Command')).toBe(Math.ceil(keys.length / 2));
    });

    it('lists by a string prefix, not only by directory', async () => {
      expect((await collect(store.list('blobs/sha256/a'))).map((o) => o.key)).toEqual([
        'blobs/sha256/aa',
        'blobs/sha256/ab',
      ]);
      expect(await collect(store.list('nope/'))).toEqual([]);
    });

    it('lists the next path segments, without files and across pages', async () => {
      sent.clear();
      expect(await store.listDirs('repos/')).toEqual(['alpine', 'busybox', 'nginx']);
      expect(sent.get('ListObjectsV2Command')).toBeGreaterThan(1);
      expect(await store.listDirs('')).toEqual(['blobs', 'repos']);
      expect(await store.listDirs('repos/nginx/history/')).toEqual(['2024']);
      expect(await store.listDirs('absent/')).toEqual([]);
    });

    it('lists a whole bucket when the store has no prefix', async () => {
      const root = new S3ObjectStore({ bucket: plain, client });
      expect(await root.listDirs('')).toEqual(expect.arrayContaining(['tree', 'tree-old', 'big']));
      expect((await collect(root.list('tree'))).map((o) => o.key)).toEqual([
        'tree-old/index.json', // S3 orders by bytes: '-' sorts before '/'
        ...keys.map((k) => `tree/${k}`),
        'treetop',
      ]);
    });
  });

  describe('Static: fromUrl / prefix handling', () => {
    it('joins keys under the prefix with exactly one slash', async () => {
      const store = S3ObjectStore.fromUrl(`s3://${plain}//vaults/prod/`, client);
      expect(store.url).toBe(`s3://${plain}/vaults/prod`);

      await store.putBytes('/oci-layout', Buffer.from('{}'));

      const raw = await client.send(new GetObjectCommand({ Bucket: plain, Key: 'vaults/prod/oci-layout' }));
      expect(await raw.Body?.transformToString()).toBe('{}');
      expect(await store.head('oci-layout')).toEqual({ key: 'oci-layout', size: 2 });
    });

    it('uses the bucket root for s3://bucket', async () => {
      const store = S3ObjectStore.fromUrl(`s3://${plain}`, client);
      expect(store.url).toBe(`s3://${plain}`);
      await store.putBytes('at-root', Buffer.from('r'));
      expect(
        (await client.send(new HeadObjectCommand({ Bucket: plain, Key: 'at-root' }))).ContentLength,
      ).toBe(1);
    });

    it('rejects what is not an S3 URL and an empty key', async () => {
      expect(() => S3ObjectStore.fromUrl('file:///tmp/x', client)).toThrow('not an S3 URL: "file:///tmp/x"');
      expect(() => S3ObjectStore.fromUrl('s3:///prefix', client)).toThrow('not an S3 URL');
      await expect(S3ObjectStore.fromUrl(`s3://${plain}/p`, client).head('/')).rejects.toThrow(
        'empty object key',
      );
    });
  });
  describe('Versions and Object Lock', () => {
    const locked = `iv-s3store-l-${run}`;

    beforeAll(async () => {
      await client.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    });

    it('reports the version a write made, and head the current version', async () => {
      const store = new S3ObjectStore({ bucket: versioned, prefix: 'ver', client });

      const first = await store.putBytes('k', Buffer.from('one'));
      const second = await store.putBytes('k', Buffer.from('two'));

      expect(first.versionId).toMatch(/\S+/);
      expect(second.versionId).toMatch(/\S+/);
      expect(second.versionId).not.toBe(first.versionId);
      expect(await store.head('k')).toEqual({ key: 'k', size: 3, versionId: second.versionId });
      // radosgw has no replication here: no status is reported rather than a made-up one
      expect((await store.head('k'))?.replication).toBeUndefined();
    });

    it('reports no version id on an unversioned bucket', async () => {
      const store = new S3ObjectStore({ bucket: plain, prefix: 'nover', client });
      expect(await store.putBytes('k', Buffer.from('x'))).toEqual({});
      expect(await store.head('k')).toEqual({ key: 'k', size: 1 });
    });

    it('locks a version with a retention nobody can delete before it ends', async () => {
      const store = new S3ObjectStore({ bucket: locked, prefix: 'lock', client });
      const until = new Date(Date.now() + 86_400_000);

      const put = await store.putBytes('entry', Buffer.from('{"seq":1}'), {
        retention: { mode: 'COMPLIANCE', until },
        ifNoneMatch: true,
      });

      const head = await store.head('entry');
      expect(head?.versionId).toBe(put.versionId);
      expect(head?.retention?.mode).toBe('COMPLIANCE');
      expect(Math.abs(head!.retention!.until.getTime() - until.getTime())).toBeLessThan(1000);
      // A plain delete only hides it behind a delete marker; deleting the version itself is refused.
      await client.send(new DeleteObjectCommand({ Bucket: locked, Key: 'lock/entry' }));
      await expect(
        client.send(new DeleteObjectCommand({ Bucket: locked, Key: 'lock/entry', VersionId: put.versionId })),
      ).rejects.toMatchObject({ name: 'AccessDenied' });
      const raw = await client.send(
        new GetObjectCommand({ Bucket: locked, Key: 'lock/entry', VersionId: put.versionId }),
      );
      expect(await raw.Body?.transformToString()).toBe('{"seq":1}');
    });

    it('lists every version and delete marker, by key, newest first, across pages', async () => {
      const store = new S3ObjectStore({ bucket: versioned, prefix: 'lv', client, pageSize: 2 });
      const a1 = await store.putBytes('a', Buffer.from('1'));
      const a2 = await store.putBytes('a', Buffer.from('2'));
      const b1 = await store.putBytes('b', Buffer.from('1'));
      const removed = await client.send(new DeleteObjectCommand({ Bucket: versioned, Key: 'lv/b' }));
      const c1 = await store.putBytes('c', Buffer.from('1'));

      const all = [];
      for await (const v of store.listVersions('')) all.push(v);

      expect(
        all.map(({ key, versionId, isLatest, deleteMarker }) => ({ key, versionId, isLatest, deleteMarker })),
      ).toEqual([
        { key: 'a', versionId: a2.versionId, isLatest: true, deleteMarker: false },
        { key: 'a', versionId: a1.versionId, isLatest: false, deleteMarker: false },
        { key: 'b', versionId: removed.VersionId, isLatest: true, deleteMarker: true },
        { key: 'b', versionId: b1.versionId, isLatest: false, deleteMarker: false },
        { key: 'c', versionId: c1.versionId, isLatest: true, deleteMarker: false },
      ]);
    });
  });
});

describe('Class: S3ObjectStore (client mock)', () => {
  const exists = (name: string, status: number) =>
    new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });

  function mocked() {
    const client = new S3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    });
    const s3 = mockClient(client); // this instance only: the radosgw tests' clients stay real
    const store = new S3ObjectStore({ bucket: 'b', prefix: 'p', client, conditionalWrites: 'check-first' });
    return { client, s3, store };
  }

  describe('Method: putBytes', () => {
    it('maps 412 PreconditionFailed (AWS S3 on a versioned bucket, or a racing writer) to ObjectExistsError', async () => {
      // Prepare: HEAD sees nothing, then another writer wins the race
      const { s3, store } = mocked();
      s3.on(HeadObjectCommand).rejects(
        new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'NotFound' }),
      );
      s3.on(PutObjectCommand).rejects(exists('PreconditionFailed', 412));

      // Act
      const put = store.putBytes('history/1.json', Buffer.from('{}'), { ifNoneMatch: true });

      // Assess
      await expect(put).rejects.toBeInstanceOf(ObjectExistsError);
      await expect(put).rejects.toMatchObject({ key: 'history/1.json', store: 's3://b/p' });
      expect(s3.commandCalls(PutObjectCommand)[0].args[0].input).toMatchObject({
        Bucket: 'b',
        Key: 'p/history/1.json',
        IfNoneMatch: '*',
      });
    });

    describe('409 ConditionalRequestConflict (AWS S3: a concurrent write to the key; retry the request)', () => {
      const conflict = () => exists('ConditionalRequestConflict', 409);
      const quick = (client: S3Client, attempts = 4) =>
        new S3ObjectStore({
          bucket: 'b',
          prefix: 'p',
          client,
          conditionalWrites: 'check-first',
          conflictRetry: { attempts, baseDelayMs: 1, maxDelayMs: 5 },
        });

      it('retries it, and succeeds when the other writer gave up the key', async () => {
        const { client, s3 } = mocked();
        s3.on(HeadObjectCommand).rejects(
          new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'NotFound' }),
        );
        s3.on(PutObjectCommand).rejectsOnce(conflict()).resolves({ VersionId: 'v2' });

        await expect(quick(client).putBytes('h', Buffer.from('{}'), { ifNoneMatch: true })).resolves.toEqual({
          versionId: 'v2',
        });
        expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
        expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(2);
      });

      it('retries it, and answers ObjectExistsError when the other writer won (412)', async () => {
        const { client, s3 } = mocked();
        s3.on(HeadObjectCommand).rejects(
          new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'NotFound' }),
        );
        s3.on(PutObjectCommand).rejectsOnce(conflict()).rejects(exists('PreconditionFailed', 412));

        await expect(
          quick(client).putBytes('h', Buffer.from('{}'), { ifNoneMatch: true }),
        ).rejects.toBeInstanceOf(ObjectExistsError);
      });

      it('gives up after the bounded attempts with an error that says what kept happening', async () => {
        const { client, s3 } = mocked();
        s3.on(HeadObjectCommand).rejects(
          new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'NotFound' }),
        );
        s3.on(PutObjectCommand).rejects(conflict());

        const put = quick(client, 3).putBytes('history/1.json', Buffer.from('{}'), { ifNoneMatch: true });

        await expect(put).rejects.toBeInstanceOf(WriteConflictError);
        await expect(put).rejects.toThrow(
          's3://b/p: writing history/1.json conflicted with concurrent writes to the same key 3 times in a row (409 ConditionalRequestConflict); gave up',
        );
        await expect(put).rejects.toMatchObject({
          cause: { message: expect.stringContaining('PutObject s3://b/p/history/1.json failed: HTTP 409') },
        });
        expect(s3.commandCalls(PutObjectCommand)).toHaveLength(3);
      });

      it('refuses conflictRetry values it cannot use, naming each', () => {
        expect(
          () => new S3ObjectStore({ bucket: 'b', conflictRetry: { attempts: 0, baseDelayMs: -1 } }),
        ).toThrow(
          'S3ObjectStore: conflictRetry.attempts must be a positive integer, got 0; conflictRetry.baseDelayMs must be a number of at least 0, got -1',
        );
      });
    });

    it('refuses without writing when HEAD finds the key', async () => {
      const { s3, store } = mocked();
      s3.on(HeadObjectCommand).resolves({ ContentLength: 2 });

      await expect(store.putBytes('h', Buffer.from('{}'), { ifNoneMatch: true })).rejects.toBeInstanceOf(
        ObjectExistsError,
      );
      expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    });

    it('against AWS S3 (atomic) refuses with If-None-Match alone: no HEAD first', async () => {
      // Prepare
      const { client, s3 } = mocked();
      s3.on(PutObjectCommand).resolvesOnce({ VersionId: 'v1' }).rejects(exists('PreconditionFailed', 412));
      const store = new S3ObjectStore({ bucket: 'b', prefix: 'p', client, conditionalWrites: 'atomic' });

      // Act
      const first = await store.putBytes('h', Buffer.from('{}'), { ifNoneMatch: true });
      const second = store.putBytes('h', Buffer.from('{}'), { ifNoneMatch: true });

      // Assess
      expect(first).toEqual({ versionId: 'v1' });
      await expect(second).rejects.toBeInstanceOf(ObjectExistsError);
      expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
      expect(s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.IfNoneMatch)).toEqual(['*', '*']);
    });

    it('is atomic by default against AWS S3 (no endpoint of its own, none in the environment)', async () => {
      const saved = { s3: process.env.AWS_ENDPOINT_URL_S3, any: process.env.AWS_ENDPOINT_URL };
      delete process.env.AWS_ENDPOINT_URL_S3;
      delete process.env.AWS_ENDPOINT_URL;
      try {
        const client = new S3Client({
          region: 'us-east-1',
          credentials: { accessKeyId: 'k', secretAccessKey: 's' },
        });
        const s3 = mockClient(client);
        s3.on(PutObjectCommand).rejects(exists('PreconditionFailed', 412));

        const put = new S3ObjectStore({ bucket: 'b', client }).putBytes('h', Buffer.from('{}'), {
          ifNoneMatch: true,
        });

        await expect(put).rejects.toBeInstanceOf(ObjectExistsError);
        expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
      } finally {
        for (const [k, v] of [
          ['AWS_ENDPOINT_URL_S3', saved.s3],
          ['AWS_ENDPOINT_URL', saved.any],
        ] as const)
          if (v !== undefined) process.env[k] = v;
      }
    });

    it('checks first by default when the client has an endpoint of its own (radosgw ignores If-None-Match on versioned buckets)', async () => {
      const client = new S3Client({
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:1',
        credentials: { accessKeyId: 'k', secretAccessKey: 's' },
      });
      const s3 = mockClient(client);
      s3.on(HeadObjectCommand).resolves({ ContentLength: 2 });

      const put = new S3ObjectStore({ bucket: 'b', client }).putBytes('h', Buffer.from('{}'), {
        ifNoneMatch: true,
      });

      await expect(put).rejects.toBeInstanceOf(ObjectExistsError);
      expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    });

    it('sends no If-None-Match and maps nothing without ifNoneMatch', async () => {
      const { s3, store } = mocked();
      s3.on(PutObjectCommand).rejects(exists('PreconditionFailed', 412));

      await expect(store.putBytes('h', Buffer.from('{}'))).rejects.toThrow(
        'PutObject s3://b/p/h failed: HTTP 412 PreconditionFailed',
      );
      expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
      expect(s3.commandCalls(PutObjectCommand)[0].args[0].input.IfNoneMatch).toBeUndefined();
    });
  });

  describe('Method: head', () => {
    it.each([
      ['PENDING', 'pending'],
      ['COMPLETED', 'completed'],
      ['COMPLETE', 'completed'],
      ['FAILED', 'failed'],
      ['REPLICA', 'replica'],
    ] as const)('maps replication status %s (no local peer replicates) to %s', async (status, expected) => {
      const { s3, store } = mocked();
      s3.on(HeadObjectCommand).resolves({ ContentLength: 2, VersionId: 'v1', ReplicationStatus: status });

      expect(await store.head('k')).toEqual({ key: 'k', size: 2, versionId: 'v1', replication: expected });
    });
  });

  describe('Constructor', () => {
    it('reports every invalid option together', () => {
      expect(() => new S3ObjectStore({ bucket: 'a/b', partSize: MiB, queueSize: 0, pageSize: 5000 })).toThrow(
        /bucket must be a bucket name.*partSize must be .* at least 5242880.*queueSize must be a positive.*pageSize must be/,
      );
    });
  });

  describe('Function: s3ClientConfig', () => {
    it('uses path style and checksums only when required with an endpoint override, and always timeouts', () => {
      const requestHandler = {
        connectionTimeout: 10_000,
        requestTimeout: 300_000,
        throwOnRequestTimeout: true,
        socketTimeout: 60_000,
      };
      const local = {
        requestHandler,
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      };
      expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:7480' })).toEqual(local);
      expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://127.0.0.1:7480' })).toEqual(local);
      expect(s3ClientConfig({})).toEqual({ requestHandler, followRegionRedirects: true });
      expect(
        s3ClientConfig({
          AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:7480',
          AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true',
        }),
      ).toEqual({ requestHandler, followRegionRedirects: true });
    });

    it('takes the request and idle timeouts given (IMAGEVAULT_TIMEOUT, IMAGEVAULT_IDLE_TIMEOUT), connecting within both', () => {
      expect(s3ClientConfig({}, { requestTimeoutMs: 2_000, idleTimeoutMs: 500 }).requestHandler).toEqual({
        connectionTimeout: 2_000,
        requestTimeout: 2_000,
        throwOnRequestTimeout: true,
        socketTimeout: 500,
      });
    });
  });
});

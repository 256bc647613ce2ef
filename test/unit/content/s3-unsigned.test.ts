import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { S3ObjectStore } from '../../../lib/content/s3';

describe('Class: S3ObjectStore (default client)', () => {
  let server: Server;
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; bytes: number }[] = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    // A stand-in S3 endpoint that records requests: what matters here is what the client sends.
    server = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes });
        res.writeHead(200, { ETag: '"etag"' }).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      AWS_ACCESS_KEY_ID: 'k',
      AWS_SECRET_ACCESS_KEY: 's',
      AWS_REGION: 'us-east-1',
    });
  });

  afterAll(async () => {
    process.env = saved;
    await new Promise((r) => server.close(r));
  });

  it('sends object bodies as UNSIGNED-PAYLOAD (the vault verifies digests itself) and signs the rest', async () => {
    // Prepare
    const store = S3ObjectStore.fromUrl('s3://bucket/p');
    // Act
    await store.putStream('blobs/sha256/aa', Readable.from([Buffer.alloc(1000, 1)]));
    await store.putBytes('x.json', Buffer.from('{}'));
    await store.head('x.json');
    // Assess
    const puts = seen.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(2);
    for (const p of puts) {
      expect(p.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(p.headers.authorization).toMatch(/x-amz-content-sha256/);
    }
    expect(puts[0].bytes).toBe(1000);
    const head = seen.find((r) => r.method === 'HEAD')!;
    expect(head.headers['x-amz-content-sha256']).not.toBe('UNSIGNED-PAYLOAD');
  });
});

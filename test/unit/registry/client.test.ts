import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { DigestMismatchError, MANIFEST_MEDIA_TYPES, MediaType, type Descriptor } from '../../../lib/oci';
import { staticCredentials, type Credential } from '../../../lib/registry/auth';
import { RegistryClient, type RegistryClientOptions } from '../../../lib/registry/client';
import { referrersTag } from '../../../lib/registry/referrers';
import { RegistryError } from '../../../lib/registry/errors';

// ---------------------------------------------------------------------------------------------------------------
// An in-process registry on 127.0.0.1: enough of the distribution API for the client's paths, with a hook that
// lets a test answer (or break) any request before the registry does.
// ---------------------------------------------------------------------------------------------------------------

interface Seen {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Hook = (req: Seen, res: ServerResponse) => boolean | void | Promise<boolean | void>;

const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): true {
  const text =
    body === undefined ? '' : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
  return true;
}

function specError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): true {
  return send(
    res,
    status,
    { errors: [{ code, message }] },
    { 'content-type': 'application/json', ...headers },
  );
}

class FakeRegistry {
  readonly seen: Seen[] = [];
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
  readonly tagsByRepo = new Map<string, string[]>();
  private readonly uploads = new Map<string, Buffer[]>();
  private uploadCount = 0;
  hook: Hook = () => false;
  /** When true, PUT manifest answers with OCI-Subject, as registries with the referrers API do. */
  referrersApi = false;
  private server = createServer((req, res) => void this.handle(req, res)).on(
    'connection',
    () => this.connections++,
  );
  /** TCP connections the client opened. */
  connections = 0;
  host = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get base(): string {
    return `http://${this.host}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Requests other than the ping, as `METHOD /path?query`. */
  calls(filter?: RegExp): string[] {
    return this.seen
      .filter((s) => s.url.pathname !== '/v2/')
      .map((s) => `${s.method} ${s.url.pathname}${s.url.search}`)
      .filter((c) => !filter || filter.test(c));
  }

  private async handle(req: import('node:http').IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return; // the client aborted the body
    }
    const seen: Seen = {
      method: req.method!,
      url: new URL(req.url!, this.base),
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    this.seen.push(seen);
    try {
      if (await this.hook(seen, res)) return;
      this.route(seen, res);
    } catch (e) {
      send(res, 500, String(e));
    }
  }

  private route(req: Seen, res: ServerResponse): void {
    const p = req.url.pathname;
    if (p === '/v2/') return void send(res, 200, {});
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(p)) && req.method === 'POST')
      return this.startUpload(m[1], req, res);
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(p))) return this.upload(m[1], m[2], req, res);
    if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(p))) return this.blob(m[2], req, res);
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(p))) return this.manifest(m[1], m[2], req, res);
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(p))) return this.tags(m[1], req, res);
    send(res, 404, '404 page not found', { 'content-type': 'text/plain' });
  }

  private startUpload(repo: string, req: Seen, res: ServerResponse): void {
    const mount = req.url.searchParams.get('mount');
    if (mount && this.blobs.has(mount))
      return void send(res, 201, '', { location: `/v2/${repo}/blobs/${mount}` });
    const id = `u${++this.uploadCount}`;
    this.uploads.set(id, []);
    send(res, 202, '', { location: `/v2/${repo}/blobs/uploads/${id}?_state=0` });
  }

  private upload(repo: string, id: string, req: Seen, res: ServerResponse): void {
    const parts = this.uploads.get(id);
    if (!parts) return void specError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
    if (req.method === 'DELETE') {
      this.uploads.delete(id);
      return void send(res, 204);
    }
    parts.push(req.body);
    if (req.method === 'PATCH') {
      const state = Number(req.url.searchParams.get('_state')) + 1;
      return void send(res, 202, '', { location: `/v2/${repo}/blobs/uploads/${id}?_state=${state}` });
    }
    const content = Buffer.concat(parts);
    const digest = req.url.searchParams.get('digest')!;
    this.uploads.delete(id);
    if (sha256(content) !== digest)
      return void specError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
    this.blobs.set(digest, content);
    send(res, 201, '', { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest });
  }

  private blob(digest: string, req: Seen, res: ServerResponse): void {
    const b = this.blobs.get(digest);
    if (!b)
      return void (req.method === 'HEAD'
        ? send(res, 404)
        : specError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry'));
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Number(range[2]) : b.length - 1;
      return void send(res, 206, b.subarray(start, end + 1), {
        'content-range': `bytes ${start}-${end}/${b.length}`,
      });
    }
    send(res, 200, req.method === 'HEAD' ? undefined : b, { 'docker-content-digest': digest });
  }

  private manifest(repo: string, ref: string, req: Seen, res: ServerResponse): void {
    const key = `${repo}@${ref}`;
    if (req.method === 'PUT') {
      const mediaType = String(req.headers['content-type']);
      const digest = sha256(req.body);
      this.manifests.set(`${repo}@${digest}`, { bytes: req.body, mediaType });
      this.manifests.set(key, { bytes: req.body, mediaType });
      if (!ref.includes(':'))
        this.tagsByRepo.set(repo, [...new Set([...(this.tagsByRepo.get(repo) ?? []), ref])]);
      const subject = (JSON.parse(req.body.toString()) as { subject?: Descriptor }).subject;
      const headers: Record<string, string> = {
        'docker-content-digest': digest,
        location: `/v2/${repo}/manifests/${digest}`,
      };
      if (subject && this.referrersApi) headers['oci-subject'] = subject.digest;
      return void send(res, 201, '', headers);
    }
    const m = this.manifests.get(key);
    if (!m)
      return void (req.method === 'HEAD'
        ? send(res, 404)
        : specError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown'));
    const headers = {
      'content-type': m.mediaType,
      'docker-content-digest': sha256(m.bytes),
      etag: `"${sha256(m.bytes)}"`,
    };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': String(m.bytes.length) });
      return void res.end();
    }
    send(res, 200, m.bytes, headers);
  }

  private tags(repo: string, req: Seen, res: ServerResponse): void {
    const all = [...(this.tagsByRepo.get(repo) ?? [])].sort();
    const n = Number(req.url.searchParams.get('n') ?? 1000);
    const last = req.url.searchParams.get('last');
    const rest = last ? all.filter((t) => t > last) : all;
    const page = rest.slice(0, n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (rest.length > n)
      headers.link = `</v2/${repo}/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
    send(res, 200, { name: repo, tags: page }, headers);
  }
}

// ---------------------------------------------------------------------------------------------------------------

const NO_CREDENTIALS: RegistryClientOptions['credentials'] = async () => undefined;
const FAST_RETRY = { baseDelayMs: 1, maxDelayMs: 5000 };

function blobDesc(content: Buffer | string): Descriptor {
  const b = Buffer.from(content);
  return { mediaType: MediaType.OciLayer, digest: sha256(b), size: b.length };
}

function manifestBytes(fields: Record<string, unknown> = {}): Buffer {
  const config = blobDesc('{}');
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { ...config, mediaType: MediaType.OciConfig },
      layers: [],
      ...fields,
    }),
  );
}

async function readStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('Class: RegistryClient', () => {
  let reg: FakeRegistry;
  const clients: RegistryClient[] = [];

  function client(options: RegistryClientOptions = {}, host = reg.host): RegistryClient {
    const c = new RegistryClient(host, { credentials: NO_CREDENTIALS, retry: FAST_RETRY, ...options });
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    reg = await new FakeRegistry().start();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await reg.stop();
  });

  describe('Constructor', () => {
    it('reports every invalid option together, naming each', () => {
      expect(
        () =>
          new RegistryClient('r.example.com', { chunkSize: 0, pageSize: 5000, retry: { maxAttempts: 0 } }),
      ).toThrow(
        /chunkSize must be .* got 0; pageSize must be .* got 5000; retry.maxAttempts must be .* got 0/,
      );
    });

    it('refuses timeouts that are not positive numbers, naming each', () => {
      expect(
        () => new RegistryClient('r.example.com', { requestTimeoutMs: 0, idleTimeoutMs: Number.NaN }),
      ).toThrow(/requestTimeoutMs must be a number greater than 0, got 0; idleTimeoutMs must be .* got NaN/);
    });

    it('refuses a registry with a scheme or path', () => {
      expect(() => new RegistryClient('https://r.example.com')).toThrow(
        /invalid registry "https:\/\/r.example.com"/,
      );
      expect(() => new RegistryClient('r.example.com/v2')).toThrow(/expected host\[:port\]/);
    });
  });

  describe('Method: resolve', () => {
    it('sends HEAD with all four manifest Accept types and reads digest, type and size from headers', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });

      // Act
      const desc = await client().repository('app').resolve('1.0');

      // Assess
      expect(desc).toEqual({ mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length });
      const head = reg.seen.find((s) => s.method === 'HEAD')!;
      for (const t of MANIFEST_MEDIA_TYPES) expect(head.headers.accept).toContain(t);
      expect(reg.calls()).toEqual(['HEAD /v2/app/manifests/1.0']);
    });

    it('falls back to GET and hashes the body when HEAD has no Docker-Content-Digest', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.hook = (req, res) =>
        req.method === 'HEAD' && send(res, 200, undefined, { 'content-type': MediaType.OciManifest });
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });

      // Act
      const desc = await client().repository('app').resolve('1.0');

      // Assess
      expect(desc.digest).toBe(sha256(bytes));
      expect(reg.calls()).toEqual(['HEAD /v2/app/manifests/1.0', 'GET /v2/app/manifests/1.0']);
    });
    it('keeps the connection a HEAD used: the ping, the HEAD and the GET after it share one', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });
      const repo = client().repository('app');

      // Act
      await repo.resolve('1.0');
      await repo.fetchManifest('1.0');

      // Assess
      expect(reg.calls()).toEqual(['HEAD /v2/app/manifests/1.0', 'GET /v2/app/manifests/1.0']);
      expect(reg.connections).toBe(1);
    });

    it('still answers the request after a HEAD whose server sent a body with it (on a new connection)', async () => {
      // Prepare: a raw server, since an HTTP server library never sends a body with a HEAD.
      const bytes = manifestBytes();
      const digest = sha256(bytes);
      let connections = 0;
      const server = createTcpServer((socket) => {
        connections++;
        let pending = '';
        socket.on('data', (d: Buffer) => {
          pending += d.toString('latin1');
          for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
            const [method, target] = pending.slice(0, end).split(' ');
            pending = pending.slice(end + 4);
            const headers = `content-type: ${MediaType.OciManifest}\r\ndocker-content-digest: ${digest}\r\n`;
            if (target === '/v2/') socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}');
            else if (method === 'HEAD')
              socket.write(`HTTP/1.1 200 OK\r\n${headers}content-length: ${bytes.length}\r\n\r\n${bytes}`);
            else socket.write(`HTTP/1.1 200 OK\r\n${headers}content-length: ${bytes.length}\r\n\r\n${bytes}`);
          }
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const repo = client({}, host).repository('app');

        // Act
        const desc = await repo.resolve('1.0');
        const got = await repo.fetchManifest(desc.digest);

        // Assess
        expect(desc.digest).toBe(digest);
        expect(got.bytes.equals(bytes)).toBe(true);
        expect(connections).toBe(2);
      } finally {
        await Promise.all(clients.splice(0).map((c) => c.close()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  });

  describe('Method: head', () => {
    it('reads digest, media type, size and the rate-limit headers from one HEAD', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });
      reg.hook = (req, res) => {
        if (req.method !== 'HEAD') return false;
        return send(res, 200, undefined, {
          'content-type': `${MediaType.OciManifest}; charset=utf-8`,
          'content-length': String(bytes.length),
          'docker-content-digest': sha256(bytes),
          'ratelimit-limit': '100;w=21600',
          'ratelimit-remaining': '97;w=21600',
          'retry-after': '3',
        });
      };

      // Act
      const head = await client().repository('app').head('1.0');

      // Assess
      expect(head).toEqual({
        digest: sha256(bytes),
        mediaType: MediaType.OciManifest,
        size: bytes.length,
        via: 'head',
        rateLimit: { limit: 100, remaining: 97, windowSeconds: 21600, retryAfterMs: 3000 },
      });
      expect(reg.calls()).toEqual(['HEAD /v2/app/manifests/1.0']);
    });

    it('answers from a GET, with its bytes and its rate-limit headers, when the registry has no HEAD on manifests', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });
      reg.hook = (req, res) => {
        if (req.method === 'HEAD') return send(res, 405);
        return send(res, 200, bytes, {
          'content-type': MediaType.OciManifest,
          'ratelimit-remaining': '0;w=60',
        });
      };

      // Act
      const head = await client().repository('app').head('1.0');

      // Assess
      expect(head).toEqual({
        digest: sha256(bytes),
        mediaType: MediaType.OciManifest,
        size: bytes.length,
        via: 'get',
        bytes,
        rateLimit: { remaining: 0, windowSeconds: 60 },
      });
      expect(reg.calls()).toEqual(['HEAD /v2/app/manifests/1.0', 'GET /v2/app/manifests/1.0']);
    });

    it('keeps what the HEAD said of the rate limit when the GET after it says nothing', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });
      reg.hook = (req, res) =>
        req.method === 'HEAD' &&
        send(res, 200, undefined, { 'content-type': MediaType.OciManifest, 'ratelimit-remaining': '5' });

      // Act
      const head = await client().repository('app').head('1.0');

      // Assess
      expect(head).toMatchObject({ digest: sha256(bytes), via: 'get', rateLimit: { remaining: 5 } });
    });
  });

  describe('Option: onRequest', () => {
    it('is told of each request once, not of its retries or the ping', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });
      reg.manifests.set(`app@${sha256(bytes)}`, { bytes, mediaType: MediaType.OciManifest });
      let refused = 0;
      reg.hook = (req, res) =>
        req.method === 'HEAD' && refused++ < 2 && send(res, 429, undefined, { 'retry-after': '0' });
      const told: string[] = [];

      // Act
      const repo = client({ onRequest: (r) => told.push(`${r.method} ${r.url}`) }).repository('app');
      await repo.head('1.0');
      await repo.fetchManifest(sha256(bytes));

      // Assess
      expect(reg.calls()).toHaveLength(4);
      expect(told).toEqual(['HEAD /v2/app/manifests/1.0', `GET /v2/app/manifests/${sha256(bytes)}`]);
    });
  });

  describe('Option: onResponse', () => {
    it('is told of the final answer to each request with its rate-limit headers, a refusal included', async () => {
      // Prepare
      const bytes = manifestBytes();
      reg.manifests.set(`app@${sha256(bytes)}`, { bytes, mediaType: MediaType.OciManifest });
      reg.hook = (req, res) => {
        if (req.method === 'HEAD')
          return send(res, 429, undefined, { 'retry-after': '0', 'ratelimit-remaining': '0;w=21600' });
        if (req.method !== 'GET' || !req.url.pathname.includes('/manifests/')) return false;
        return send(res, 200, bytes, {
          'content-type': MediaType.OciManifest,
          'ratelimit-remaining': '42;w=21600',
        });
      };
      const told: unknown[] = [];
      const repo = client({
        retry: { ...FAST_RETRY, maxAttempts: 2 },
        onResponse: (r) => told.push(r),
      }).repository('app');

      // Act
      await repo.fetchManifest(sha256(bytes));
      await expect(repo.head('1.0')).rejects.toThrow(/429/);

      // Assess
      expect(told).toEqual([
        {
          method: 'GET',
          url: `/v2/app/manifests/${sha256(bytes)}`,
          status: 200,
          rateLimit: { remaining: 42, windowSeconds: 21600 },
        },
        {
          method: 'HEAD',
          url: '/v2/app/manifests/1.0',
          status: 429,
          rateLimit: { remaining: 0, windowSeconds: 21600, retryAfterMs: 0 },
        },
      ]);
    });
  });

  describe('Method: fetchManifest', () => {
    it('returns the exact bytes and their descriptor', async () => {
      const bytes = Buffer.from(`${manifestBytes().toString()}\n\n`); // odd whitespace must survive
      reg.manifests.set('app@1.0', { bytes, mediaType: MediaType.OciManifest });
      const { descriptor, bytes: got } = await client().repository('app').fetchManifest('1.0');
      expect(got.equals(bytes)).toBe(true);
      expect(descriptor).toEqual({
        mediaType: MediaType.OciManifest,
        digest: sha256(bytes),
        size: bytes.length,
      });
    });

    it('rejects bytes that do not match Docker-Content-Digest', async () => {
      reg.hook = (_req, res) =>
        send(res, 200, manifestBytes(), {
          'content-type': MediaType.OciManifest,
          'docker-content-digest': sha256('other'),
        });
      await expect(client().repository('app').fetchManifest('1.0')).rejects.toThrow(DigestMismatchError);
    });

    it('rejects bytes that do not match the digest asked for', async () => {
      reg.hook = (_req, res) => send(res, 200, manifestBytes(), { 'content-type': MediaType.OciManifest });
      await expect(client().repository('app').fetchManifest(sha256('other'))).rejects.toThrow(
        DigestMismatchError,
      );
    });
  });

  describe('Errors', () => {
    it('turns the spec error body into a RegistryError naming method, URL and code', async () => {
      // Act
      const err = await client()
        .repository('app')
        .fetchManifest('1.0')
        .catch((e: unknown) => e);

      // Assess
      expect(err).toBeInstanceOf(RegistryError);
      const e = err as RegistryError;
      expect(e.message).toBe(
        `GET http://${reg.host}/v2/app/manifests/1.0: 404 MANIFEST_UNKNOWN: manifest unknown`,
      );
      expect(e.status).toBe(404);
      expect(e.code()).toBe('MANIFEST_UNKNOWN');
      expect(e.method).toBe('GET');
      expect(e.temporary).toBe(false);
    });

    it('says exists() is false on 404 rather than throwing', async () => {
      const repo = client().repository('app');
      expect(await repo.exists(blobDesc('missing'))).toBe(false);
      reg.blobs.set(sha256('here'), Buffer.from('here'));
      expect(await repo.exists(blobDesc('here'))).toBe(true);
    });
  });

  describe('Auth: bearer', () => {
    let tokenRequests: Seen[];

    /** A token service at /token that issues `tok:<scopes>`; the registry accepts a token only for its scopes. */
    function bearerRegistry(
      tokenReply: (req: Seen) => unknown = (req) => ({
        token: `tok:${req.url.searchParams.getAll('scope').join(' ')}`,
      }),
    ) {
      tokenRequests = [];
      const challenge = (scope?: string) => ({
        'www-authenticate': `Bearer realm="${reg.base}/token",service="fake"${scope ? `,scope="${scope}"` : ''}`,
      });
      reg.hook = (req, res) => {
        if (req.url.pathname === '/token') {
          tokenRequests.push(req);
          return send(res, 200, tokenReply(req), { 'content-type': 'application/json' });
        }
        if (req.url.pathname === '/v2/')
          return specError(res, 401, 'UNAUTHORIZED', 'authentication required', challenge());
        const auth = String(req.headers.authorization ?? '');
        const repo = /^\/v2\/([^/]+)\//.exec(req.url.pathname)?.[1];
        const needs = ['GET', 'HEAD'].includes(req.method) ? 'pull' : 'pull,push';
        const scope = `repository:${repo}:${needs}`;
        const granted = /^Bearer tok:(.*)$/.exec(auth)?.[1].split(' ') ?? [];
        if (!granted.includes(scope))
          return specError(res, 401, 'UNAUTHORIZED', 'authentication required', challenge(scope));
        return false;
      };
    }

    it('fetches a pull token once, caches it, and fetches a pull,push token for uploads', async () => {
      // Prepare
      bearerRegistry();
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const repo = client({
        credentials: staticCredentials({ [reg.host]: { username: 'alice', password: 'pw' } }),
      }).repository('app');

      // Act
      await repo.resolve('1.0');
      await repo.resolve('1.0');
      await repo.push(blobDesc('layer'), Readable.from([Buffer.from('layer')]));

      // Assess
      expect(tokenRequests.map((t) => t.url.searchParams.getAll('scope'))).toEqual([
        ['repository:app:pull'],
        ['repository:app:pull,push'],
      ]);
      expect(tokenRequests[0].url.searchParams.get('service')).toBe('fake');
      expect(tokenRequests[0].headers.authorization).toBe(
        `Basic ${Buffer.from('alice:pw').toString('base64')}`,
      );
      expect(reg.blobs.get(sha256('layer'))?.toString()).toBe('layer');
      // Authorized up front after the ping: no request was answered 401.
      expect(reg.calls(/^(HEAD|POST|PUT)/)).toHaveLength(4);
    });

    it('accepts access_token and renews a token after expires_in', async () => {
      // Prepare
      bearerRegistry((req) => ({
        access_token: `tok:${req.url.searchParams.getAll('scope').join(' ')}`,
        expires_in: 1,
      }));
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const repo = client().repository('app');

      // Act
      await repo.resolve('1.0');
      await new Promise((r) => setTimeout(r, 600)); // a 1 s token is renewed half-way
      await repo.resolve('1.0');

      // Assess
      expect(tokenRequests).toHaveLength(2);
      expect(tokenRequests[0].headers.authorization).toBeUndefined(); // anonymous
    });

    it('exchanges an identity token with an OAuth2 POST', async () => {
      // Prepare
      bearerRegistry((req) => {
        const form = new URLSearchParams(req.body.toString());
        expect(req.method).toBe('POST');
        expect(form.get('grant_type')).toBe('refresh_token');
        expect(form.get('refresh_token')).toBe('refresh-me');
        expect(form.get('service')).toBe('fake');
        return { access_token: `tok:${form.get('scope')}` };
      });
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const cred: Credential = { identityToken: 'refresh-me' };

      // Act
      const desc = await client({ credentials: async () => cred })
        .repository('app')
        .resolve('1.0');

      // Assess
      expect(desc.mediaType).toBe(MediaType.OciManifest);
      expect(tokenRequests).toHaveLength(1);
    });

    it('learns the challenge from a 401 when the ping did not ask for auth', async () => {
      // Prepare
      bearerRegistry();
      const inner = reg.hook;
      reg.hook = (req, res) => (req.url.pathname === '/v2/' ? send(res, 200, {}) : inner(req, res));
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });

      // Act
      await client().repository('app').resolve('1.0');

      // Assess
      expect(reg.calls()).toEqual([
        'HEAD /v2/app/manifests/1.0',
        'GET /token?service=fake&scope=repository%3Aapp%3Apull',
        'HEAD /v2/app/manifests/1.0',
      ]);
    });

    it('refuses to send credentials to a token service over plain HTTP on another host', async () => {
      reg.hook = (_req, res) =>
        specError(res, 401, 'UNAUTHORIZED', 'authentication required', {
          'www-authenticate': 'Bearer realm="http://auth.example.com/token",service="x"',
        });
      const c = client({ credentials: async () => ({ username: 'u', password: 'p' }) });
      await expect(c.repository('app').resolve('1.0')).rejects.toThrow(
        /refusing to send credentials over plain HTTP/,
      );
    });
  });

  describe('Auth: basic', () => {
    it('sends Basic credentials after a Basic challenge', async () => {
      // Prepare
      const expected = `Basic ${Buffer.from('bob:secret').toString('base64')}`;
      reg.hook = (req, res) =>
        req.headers.authorization !== expected &&
        specError(res, 401, 'UNAUTHORIZED', 'authentication required', {
          'www-authenticate': 'Basic realm="Registry Realm"',
        });
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });

      // Act
      const desc = await client({
        credentials: staticCredentials({ [reg.host]: { username: 'bob', password: 'secret' } }),
      })
        .repository('app')
        .resolve('1.0');

      // Assess
      expect(desc.size).toBeGreaterThan(0);
      expect(reg.calls()).toEqual(['HEAD /v2/app/manifests/1.0']);
    });

    it('asks the provider again once a credential has expired', async () => {
      // Prepare: a provider whose first credential is already past its expiry when the second request comes
      let asked = 0;
      const current = () => (asked <= 1 ? 'old' : 'new');
      reg.hook = (req, res) =>
        req.headers.authorization !== `Basic ${Buffer.from(`bob:${current()}`).toString('base64')}` &&
        specError(res, 401, 'UNAUTHORIZED', 'authentication required', {
          'www-authenticate': 'Basic realm="Registry Realm"',
        });
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const c = client({
        credentials: async () => {
          asked++;
          return { username: 'bob', password: current(), expiresAt: Date.now() + 50 };
        },
      });
      const repo = c.repository('app');

      // Act
      await repo.resolve('1.0');
      await new Promise((r) => setTimeout(r, 80));
      await repo.resolve('1.0');

      // Assess
      expect(asked).toBe(2);
    });

    it('fails with 401 when there are no credentials', async () => {
      reg.hook = (_req, res) =>
        specError(res, 401, 'UNAUTHORIZED', 'authentication required', {
          'www-authenticate': 'Basic realm="Registry Realm"',
        });
      await expect(client().repository('app').fetchManifest('1.0')).rejects.toThrow(
        /401 UNAUTHORIZED: authentication required/,
      );
    });
  });

  describe('Retries', () => {
    it('retries a 503 after the Retry-After the registry asked for', async () => {
      // Prepare
      let failures = 1;
      reg.hook = (req, res) =>
        req.method === 'HEAD' && failures-- > 0 && send(res, 503, '', { 'retry-after': '1' });
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const started = Date.now();

      // Act
      await client().repository('app').resolve('1.0');

      // Assess
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(reg.calls()).toHaveLength(2);
    });

    it('caps a long Retry-After at maxDelayMs', async () => {
      let failures = 1;
      reg.hook = (req, res) =>
        req.method === 'HEAD' && failures-- > 0 && send(res, 429, '', { 'retry-after': '3600' });
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const started = Date.now();
      await client({ retry: { baseDelayMs: 1, maxDelayMs: 20 } })
        .repository('app')
        .resolve('1.0');
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('retries 429 with backoff', async () => {
      let failures = 2;
      reg.hook = (req, res) =>
        req.url.pathname.includes('/blobs/') &&
        failures-- > 0 &&
        specError(res, 429, 'TOOMANYREQUESTS', 'too many requests');
      reg.blobs.set(sha256('b'), Buffer.from('b'));
      const body = await readStream(await client().repository('app').fetch(blobDesc('b')));
      expect(body.toString()).toBe('b');
      expect(reg.calls()).toHaveLength(3);
    });

    it('gives up after maxAttempts with a temporary RegistryError', async () => {
      reg.hook = (req, res) => req.url.pathname !== '/v2/' && specError(res, 503, 'UNAVAILABLE', 'try later');
      const err = (await client({ retry: { maxAttempts: 3, baseDelayMs: 1 } })
        .repository('app')
        .fetchManifest('1.0')
        .catch((e: unknown) => e)) as RegistryError;
      expect(err.status).toBe(503);
      expect(err.temporary).toBe(true);
      expect(reg.calls()).toHaveLength(3);
    });

    it('retries a request whose connection was reset', async () => {
      let resets = 1;
      reg.hook = (req, res) => {
        if (req.method === 'HEAD' && resets-- > 0) {
          res.socket?.destroy();
          return true;
        }
        return false;
      };
      reg.manifests.set('app@1.0', { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      await client().repository('app').resolve('1.0');
      expect(reg.calls()).toHaveLength(2);
    });

    it('does not retry a blob PUT whose body is a stream, and cancels the upload', async () => {
      // Prepare
      reg.hook = (req, res) => req.method === 'PUT' && specError(res, 503, 'UNAVAILABLE', 'try later');

      // Act
      const err = await client()
        .repository('app')
        .push(blobDesc('layer'), Readable.from([Buffer.from('layer')]))
        .catch((e: unknown) => e);

      // Assess
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).status).toBe(503);
      expect(reg.calls(/^PUT/)).toHaveLength(1);
      expect(reg.calls(/^DELETE/)).toEqual(['DELETE /v2/app/blobs/uploads/u1?_state=0']);
    });
  });

  describe('Method: fetch', () => {
    it('follows a redirect to another host without the Authorization header', async () => {
      // Prepare
      const storage = await new FakeRegistry().start();
      try {
        storage.hook = (_req, res) => send(res, 200, 'from-storage');
        const expected = `Basic ${Buffer.from('bob:secret').toString('base64')}`;
        reg.hook = (req, res) => {
          if (req.headers.authorization !== expected) {
            return specError(res, 401, 'UNAUTHORIZED', 'no', { 'www-authenticate': 'Basic realm="r"' });
          }
          return (
            req.url.pathname.includes('/blobs/') &&
            send(res, 307, '', { location: `${storage.base}/bucket/blob?X-Amz-Signature=s` })
          );
        };
        const c = client({ credentials: async () => ({ username: 'bob', password: 'secret' }) });

        // Act
        const body = await readStream(await c.repository('app').fetch(blobDesc('from-storage')));

        // Assess
        expect(body.toString()).toBe('from-storage');
        expect(storage.seen).toHaveLength(1);
        expect(storage.seen[0].headers.authorization).toBeUndefined();
        expect(storage.seen[0].url.search).toBe('?X-Amz-Signature=s');
      } finally {
        await storage.stop();
      }
    });

    it('fetches manifests from /manifests/ and blobs from /blobs/', async () => {
      const bytes = manifestBytes();
      reg.manifests.set(`app@${sha256(bytes)}`, { bytes, mediaType: MediaType.OciManifest });
      reg.blobs.set(sha256('blob'), Buffer.from('blob'));
      const repo = client().repository('app');
      expect(
        (
          await readStream(
            await repo.fetch({ mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length }),
          )
        ).equals(bytes),
      ).toBe(true);
      expect((await readStream(await repo.fetch(blobDesc('blob')))).toString()).toBe('blob');
      expect(reg.calls()).toEqual([
        `GET /v2/app/manifests/${sha256(bytes)}`,
        `GET /v2/app/blobs/${sha256('blob')}`,
      ]);
    });

    it('fetches a byte range with 206', async () => {
      reg.blobs.set(sha256('0123456789'), Buffer.from('0123456789'));
      const repo = client().repository('app');
      expect((await readStream(await repo.fetchRange(blobDesc('0123456789'), 2, 5))).toString()).toBe('2345');
      expect((await readStream(await repo.fetchRange(blobDesc('0123456789'), 7))).toString()).toBe('789');
    });

    it('refuses a 200 answer to a Range request', async () => {
      reg.hook = (req, res) => req.method === 'GET' && send(res, 200, 'whole');
      await expect(client().repository('app').fetchRange(blobDesc('whole'), 1, 2)).rejects.toThrow(
        /ignored the Range header/,
      );
    });
  });

  describe('Method: fetch (a body that breaks off)', () => {
    const content = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
    const desc = blobDesc(content);
    const blobGets = () => reg.seen.filter((s) => s.method === 'GET' && s.url.pathname.includes('/blobs/'));

    /** Answers with the whole Content-Length, sends `bytes` of the body, then breaks the connection off as `how`. */
    function breakOff(res: ServerResponse, bytes: number, how: 'reset' | 'close' | 'stall'): true {
      res.writeHead(200, { 'content-length': String(content.length) });
      res.write(content.subarray(0, bytes), () => {
        // A moment for the bytes to reach the client before the connection goes.
        const t = setTimeout(() => {
          if (how === 'reset') res.socket?.resetAndDestroy();
          else if (how === 'close') res.socket?.end();
          // 'stall': nothing more is sent; the client's idle timeout ends it (the server is stopped after each test).
        }, 20);
        t.unref();
      });
      return true;
    }

    beforeEach(() => {
      reg.blobs.set(desc.digest, content);
    });

    it('resumes a reset body with Range: bytes=N- and passes on every byte once', async () => {
      // Prepare: the first GET breaks off after 100 000 bytes with a TCP reset
      let failures = 1;
      reg.hook = (req, res) =>
        req.method === 'GET' &&
        req.url.pathname.includes('/blobs/') &&
        failures-- > 0 &&
        breakOff(res, 100_000, 'reset');

      // Act
      const body = await client().repository('app').fetch(desc);
      const got = await readStream(body);

      // Assess
      // A reset may drop bytes the client had not read yet: it resumes from what it really passed on.
      expect(got.equals(content)).toBe(true);
      const [resumption] = (body as import('../../../lib/registry').ResumingBody).resumptions;
      expect(resumption.offset).toBeGreaterThan(0);
      expect(resumption.offset).toBeLessThanOrEqual(100_000);
      expect(resumption.restartedAt).toBe(resumption.offset);
      expect(blobGets().map((s) => s.headers.range)).toEqual([undefined, `bytes=${resumption.offset}-`]);
    });

    it('resumes a body closed before its Content-Length', async () => {
      let failures = 1;
      reg.hook = (req, res) =>
        req.method === 'GET' &&
        req.url.pathname.includes('/blobs/') &&
        failures-- > 0 &&
        breakOff(res, 5000, 'close');
      const got = await readStream(await client().repository('app').fetch(desc));
      expect(got.equals(content)).toBe(true);
      expect(blobGets().map((s) => s.headers.range)).toEqual([undefined, 'bytes=5000-']);
    });

    it('resumes a body that ends cleanly short of the descriptor size', async () => {
      // Prepare: a consistent but short answer (Content-Length says 1000 too)
      let failures = 1;
      reg.hook = (req, res) =>
        req.method === 'GET' &&
        req.url.pathname.includes('/blobs/') &&
        failures-- > 0 &&
        send(res, 200, content.subarray(0, 1000));
      const got = await readStream(await client().repository('app').fetch(desc));
      expect(got.equals(content)).toBe(true);
      expect(blobGets().map((s) => s.headers.range)).toEqual([undefined, 'bytes=1000-']);
    });

    it('fails a body that stalls for the idle timeout, then resumes it', async () => {
      let failures = 1;
      reg.hook = (req, res) =>
        req.method === 'GET' &&
        req.url.pathname.includes('/blobs/') &&
        failures-- > 0 &&
        breakOff(res, 70_000, 'stall');
      const started = Date.now();
      const got = await readStream(await client({ idleTimeoutMs: 300 }).repository('app').fetch(desc));
      expect(got.equals(content)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(blobGets().map((s) => s.headers.range)).toEqual([undefined, 'bytes=70000-']);
    });

    it('reads again from the start when the registry ignores the Range, dropping what it already passed on', async () => {
      // Prepare: a registry without Range support answers every GET with the whole blob
      let failures = 1;
      reg.hook = (req, res) => {
        if (req.method !== 'GET' || !req.url.pathname.includes('/blobs/')) return false;
        return failures-- > 0 ? breakOff(res, 100_000, 'reset') : send(res, 200, content);
      };
      const body = await client().repository('app').fetch(desc);
      const got = await readStream(body);
      expect(got.equals(content)).toBe(true);
      expect((body as import('../../../lib/registry').ResumingBody).resumptions).toEqual([
        expect.objectContaining({ restartedAt: 0 }),
      ]);
    });

    it('reads again from the start when the 206 names another range or size', async () => {
      let failures = 1;
      reg.hook = (req, res) => {
        if (req.method !== 'GET' || !req.url.pathname.includes('/blobs/')) return false;
        if (failures-- > 0) return breakOff(res, 100_000, 'reset');
        if (req.headers.range)
          return send(res, 206, content.subarray(100_001), {
            'content-range': `bytes 100001-${content.length - 1}/${content.length}`,
          });
        return false;
      };
      const got = await readStream(await client().repository('app').fetch(desc));
      expect(got.equals(content)).toBe(true);
      const ranges = blobGets().map((s) => s.headers.range);
      expect(ranges).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/), undefined]);
    });

    it('gives up after maxAttempts bodies with a RegistryError saying how far it got', async () => {
      reg.hook = (req, res) =>
        req.method === 'GET' && req.url.pathname.includes('/blobs/') && breakOff(res, 10, 'reset');
      const body = await client({ retry: { maxAttempts: 3, baseDelayMs: 1 } })
        .repository('app')
        .fetch(desc);
      const err = (await readStream(body).catch((e: unknown) => e)) as RegistryError;
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.message).toMatch(
        /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/app\/blobs\/sha256:[0-9a-f]{64}: response body: .*3 attempts/,
      );
      expect(err.temporary).toBe(true);
      expect(blobGets()).toHaveLength(3);
    });

    it('does not resume a body whose reopening the registry refuses', async () => {
      let failures = 1;
      reg.hook = (req, res) => {
        if (req.method !== 'GET' || !req.url.pathname.includes('/blobs/')) return false;
        return failures-- > 0 ? breakOff(res, 10, 'reset') : specError(res, 404, 'BLOB_UNKNOWN', 'gone');
      };
      const body = await client().repository('app').fetch(desc);
      await expect(readStream(body)).rejects.toThrow(/404 BLOB_UNKNOWN: gone/);
      expect(blobGets()).toHaveLength(2);
    });
  });

  describe('Method: push', () => {
    it('uploads a blob with POST then one PUT ?digest= carrying Content-Length', async () => {
      await client()
        .repository('app')
        .push(blobDesc('hello'), Readable.from([Buffer.from('hel'), Buffer.from('lo')]));
      expect(reg.calls()).toEqual([
        'POST /v2/app/blobs/uploads/',
        `PUT /v2/app/blobs/uploads/u1?_state=0&digest=${encodeURIComponent(sha256('hello'))}`,
      ]);
      expect(reg.seen.find((s) => s.method === 'PUT')!.headers['content-length']).toBe('5');
      expect(reg.blobs.get(sha256('hello'))?.toString()).toBe('hello');
    });

    it('uploads in PATCH chunks with Content-Range when chunkSize is set', async () => {
      // Act
      await client({ chunkSize: 4 })
        .repository('app')
        .push(blobDesc('0123456789'), Readable.from([Buffer.from('01234'), Buffer.from('56789')]));

      // Assess
      const patches = reg.seen.filter((s) => s.method === 'PATCH');
      expect(patches.map((p) => p.headers['content-range'])).toEqual(['0-3', '4-7', '8-9']);
      expect(patches.map((p) => p.url.searchParams.get('_state'))).toEqual(['0', '1', '2']); // each Location followed
      expect(reg.calls(/^PUT/)).toEqual([
        `PUT /v2/app/blobs/uploads/u1?_state=3&digest=${encodeURIComponent(sha256('0123456789'))}`,
      ]);
      expect(reg.blobs.get(sha256('0123456789'))?.toString()).toBe('0123456789');
    });

    it('rejects content that does not hash to the descriptor with DigestMismatchError naming both digests', async () => {
      // Prepare
      const desc = { ...blobDesc('expected'), size: 6 };

      // Act
      const err = await client()
        .repository('app')
        .push(desc, Readable.from([Buffer.from('actual')]))
        .catch((e: unknown) => e);

      // Assess
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as DigestMismatchError).expected).toBe(desc.digest);
      expect((err as DigestMismatchError).actual).toBe(sha256('actual'));
      expect(reg.blobs.size).toBe(0);
    });

    it('refuses a chunked upload whose content does not match before finishing it', async () => {
      const err = await client({ chunkSize: 4 })
        .repository('app')
        .push({ ...blobDesc('expected'), size: 6 }, Readable.from([Buffer.from('actual')]))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect(reg.calls(/^PUT/)).toEqual([]);
      expect(reg.calls(/^DELETE/)).toHaveLength(1);
    });

    it('passes on the error of a source stream that fails', async () => {
      const source = new Readable({ read() {} });
      source.push('par');
      setTimeout(() => source.destroy(new Error('disk on fire')), 20);
      await expect(client().repository('app').push(blobDesc('partial'), source)).rejects.toThrow(
        'disk on fire',
      );
      expect(reg.blobs.size).toBe(0);
    });

    it('verifies a manifest and PUTs its exact bytes by digest with its media type', async () => {
      // Prepare
      const bytes = manifestBytes();
      const desc = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };

      // Act
      await client()
        .repository('app')
        .push(desc, Readable.from([bytes]));

      // Assess
      const put = reg.seen.find((s) => s.method === 'PUT')!;
      expect(put.url.pathname).toBe(`/v2/app/manifests/${desc.digest}`);
      expect(put.headers['content-type']).toBe(MediaType.OciManifest);
      expect(put.body.equals(bytes)).toBe(true);
    });

    it('refuses manifest bytes that do not match the descriptor without contacting the registry', async () => {
      const desc = { mediaType: MediaType.OciManifest, digest: sha256('x'), size: 1 };
      await expect(
        client()
          .repository('app')
          .push(desc, Readable.from([Buffer.from('y')])),
      ).rejects.toThrow(DigestMismatchError);
      expect(reg.calls()).toEqual([]);
    });
  });

  describe('Referrers', () => {
    const subjectBytes = manifestBytes({ annotations: { role: 'subject' } });
    const subject: Descriptor = {
      mediaType: MediaType.OciManifest,
      digest: sha256(subjectBytes),
      size: subjectBytes.length,
    };
    const fallbackTag = referrersTag(subject.digest);

    function referrer(n: number): { desc: Descriptor; bytes: Buffer } {
      const bytes = manifestBytes({
        artifactType: 'application/vnd.example.sbom',
        subject,
        annotations: { n: String(n) },
      });
      return { desc: { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length }, bytes };
    }

    it('maintains the fallback tag when the registry has no referrers API', async () => {
      // Prepare
      const repo = client().repository('app');
      const [a, b] = [referrer(1), referrer(2)];

      // Act
      await repo.push(a.desc, Readable.from([a.bytes]));
      await repo.push(b.desc, Readable.from([b.bytes]));
      await repo.push(a.desc, Readable.from([a.bytes])); // again: no duplicate entry

      // Assess
      const index = JSON.parse(reg.manifests.get(`app@${fallbackTag}`)!.bytes.toString()) as {
        mediaType: string;
        manifests: Descriptor[];
      };
      expect(reg.manifests.get(`app@${fallbackTag}`)!.mediaType).toBe(MediaType.OciIndex);
      expect(index.mediaType).toBe(MediaType.OciIndex);
      expect(index.manifests).toEqual([
        { ...a.desc, artifactType: 'application/vnd.example.sbom', annotations: { n: '1' } },
        { ...b.desc, artifactType: 'application/vnd.example.sbom', annotations: { n: '2' } },
      ]);
      const puts = reg.seen.filter((s) => s.method === 'PUT' && s.url.pathname.endsWith(fallbackTag));
      expect(puts.map((s) => s.headers['if-match'])).toEqual([undefined, `"${sha256(puts[0].body)}"`]);
      expect(puts[1].body.toString()).toContain(puts[0].body.toString().slice(0, -2)); // earlier entries kept verbatim

      // Act: the fallback is what referrers() reads back
      expect(await repo.referrers(subject)).toEqual(index.manifests);
    });

    it('leaves the fallback tag alone when the registry answers OCI-Subject', async () => {
      reg.referrersApi = true;
      const a = referrer(1);
      await client()
        .repository('app')
        .push(a.desc, Readable.from([a.bytes]));
      expect(reg.calls()).toEqual([`PUT /v2/app/manifests/${a.desc.digest}`]);
    });

    it('refuses to overwrite a fallback tag that holds something other than an index', async () => {
      reg.manifests.set(`app@${fallbackTag}`, { bytes: manifestBytes(), mediaType: MediaType.OciManifest });
      const a = referrer(1);
      await expect(
        client()
          .repository('app')
          .push(a.desc, Readable.from([a.bytes])),
      ).rejects.toThrow(/not an OCI index/);
    });

    it('lists referrers from the API, following Link pagination', async () => {
      // Prepare
      const [a, b] = [referrer(1), referrer(2)];
      reg.hook = (req, res) => {
        if (!req.url.pathname.startsWith(`/v2/app/referrers/${subject.digest}`)) return false;
        const page = req.url.searchParams.get('page');
        const headers: Record<string, string> = { 'content-type': MediaType.OciIndex };
        if (!page) headers.link = `</v2/app/referrers/${subject.digest}?page=2>; rel="next"`;
        return send(
          res,
          200,
          { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [page ? b.desc : a.desc] },
          headers,
        );
      };

      // Act
      const list = await client().repository('app').referrers(subject);

      // Assess
      expect(list).toEqual([a.desc, b.desc]);
      expect(reg.calls(/referrers/)).toHaveLength(2);
      expect(reg.calls(/manifests/)).toEqual([]);
    });

    const withFallbackTag = () => {
      const a = referrer(1);
      reg.manifests.set(`app@${fallbackTag}`, {
        bytes: Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [a.desc] }),
        ),
        mediaType: MediaType.OciIndex,
      });
      return a;
    };

    it('falls back to the tag schema when the API answers 404, and says so once', async () => {
      // Prepare
      reg.hook = (req, res) => req.url.pathname.includes('/referrers/') && send(res, 404, 'no such route');
      const a = withFallbackTag();
      const warnings: string[] = [];
      const repo = client({ warn: (line) => warnings.push(line) }).repository('app');

      // Act
      const first = await repo.referrers(subject);
      const second = await repo.referrers(subject);

      // Assess
      expect(first).toEqual([a.desc]);
      expect(second).toEqual([a.desc]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`${reg.host} has no referrers API`);
      expect(warnings[0]).toContain('answers 404');
    });

    it('falls back to the tag schema when the API answers 200 with something that is not an image index', async () => {
      reg.hook = (req, res) =>
        req.url.pathname.includes('/referrers/') &&
        send(res, 200, '<html>welcome</html>', { 'content-type': 'text/html' });
      const a = withFallbackTag();
      const warnings: string[] = [];
      expect(
        await client({ warn: (line) => warnings.push(line) })
          .repository('app')
          .referrers(subject),
      ).toEqual([a.desc]);
      expect(warnings[0]).toContain('text/html, not an image index');
    });

    it.each([400, 405, 403])(
      'throws an error naming the registry when the API answers %i, instead of falling back',
      async (status) => {
        // Prepare
        reg.hook = (req, res) =>
          req.url.pathname.includes('/referrers/') && specError(res, status, 'UNSUPPORTED', 'no n here');
        withFallbackTag();

        // Act
        const error = await client({ warn: () => undefined })
          .repository('app')
          .referrers(subject)
          .catch((e: unknown) => e);

        // Assess
        expect(error).toBeInstanceOf(RegistryError);
        expect((error as RegistryError).status).toBe(status);
        expect((error as Error).message).toContain(`the referrers API of ${reg.host} refused the request`);
        expect((error as Error).message).toContain(`app@${subject.digest}`);
        expect(reg.calls(/manifests/)).toEqual([]);
      },
    );

    it('returns no referrers when neither the API nor the fallback tag exists', async () => {
      expect(
        await client({ warn: () => undefined })
          .repository('app')
          .referrers(subject),
      ).toEqual([]);
      expect(reg.calls()).toEqual([
        `GET /v2/app/referrers/${subject.digest}`,
        `GET /v2/app/manifests/${fallbackTag}`,
      ]);
    });
  });

  describe('Method: tags', () => {
    it('follows Link rel="next" pages', async () => {
      // Prepare
      reg.tagsByRepo.set('app', ['a', 'b', 'c', 'd', 'e']);

      // Act
      const tags: string[] = [];
      for await (const t of client({ pageSize: 2 }).repository('app').tags()) tags.push(t);

      // Assess
      expect(tags).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(reg.calls()).toEqual([
        'GET /v2/app/tags/list?n=2',
        'GET /v2/app/tags/list?n=2&last=b',
        'GET /v2/app/tags/list?n=2&last=d',
      ]);
    });

    it('defaults to pages of 1000', async () => {
      reg.tagsByRepo.set('app', ['only']);
      const tags: string[] = [];
      for await (const t of client().repository('app').tags()) tags.push(t);
      expect(tags).toEqual(['only']);
      expect(reg.calls()).toEqual(['GET /v2/app/tags/list?n=1000']);
    });
  });

  describe('Method: mount', () => {
    it('is true when the registry mounts (201)', async () => {
      reg.blobs.set(sha256('shared'), Buffer.from('shared'));
      expect(await client().repository('dst').mount(blobDesc('shared'), 'src')).toBe(true);
      expect(reg.calls()).toEqual([
        `POST /v2/dst/blobs/uploads/?mount=${encodeURIComponent(sha256('shared'))}&from=src`,
      ]);
    });

    it('cancels the upload the registry opened instead (202) and is false', async () => {
      expect(await client().repository('dst').mount(blobDesc('absent'), 'src')).toBe(false);
      expect(reg.calls(/^DELETE/)).toEqual(['DELETE /v2/dst/blobs/uploads/u1?_state=0']);
    });
  });

  describe('Method: tag', () => {
    it('re-PUTs the exact manifest bytes under the tag', async () => {
      const bytes = Buffer.from(` ${manifestBytes().toString()}`);
      const desc = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
      reg.manifests.set(`app@${desc.digest}`, { bytes, mediaType: desc.mediaType });
      await client().repository('app').tag(desc, 'v1');
      expect(reg.manifests.get('app@v1')?.bytes.equals(bytes)).toBe(true);
    });
  });
});

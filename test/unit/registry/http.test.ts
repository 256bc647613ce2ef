import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as undici from 'undici';
import { HttpClient, request, undiciAgent } from '../../../lib/registry/http';
import { discard } from '../../../lib/registry/body';
import { isRetryableBodyError, isRetryableNetworkError } from '../../../lib/registry/retry';

async function text(body: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of body) s += (c as Buffer).toString();
  return s;
}

describe('Module: registry/http (undici without its index)', () => {
  it('is the Agent undici itself exports, not a copy', () => {
    expect(undiciAgent()).toBe(undici.Agent);
  });

  describe('Function: request', () => {
    let server: Server;
    let origin: string;
    const seen: { method?: string; url?: string; header?: string; body: string }[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          seen.push({ method: req.method, url: req.url, header: req.headers['x-probe'] as string, body });
          res.writeHead(201, { 'x-answer': 'yes' }).end('hello');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('sends method, path with query, headers and body to the URL on an undici dispatcher, as undici.request does', async () => {
      // Prepare
      const agent = new (undiciAgent())();
      const url = new URL('/v2/app/blobs/uploads/?digest=sha256%3Aab&n=2', origin);

      // Act
      const ours = await request(url, {
        method: 'PUT',
        headers: { 'x-probe': '1' },
        body: 'abc',
        dispatcher: agent,
      });
      const theirs = await undici.request(url, {
        method: 'PUT',
        headers: { 'x-probe': '1' },
        body: 'abc',
        dispatcher: agent,
      });

      // Assess
      expect([ours.statusCode, ours.headers['x-answer'], await text(ours.body)]).toEqual([
        201,
        'yes',
        'hello',
      ]);
      expect([theirs.statusCode, await theirs.body.text()]).toEqual([201, 'hello']);
      expect(seen).toEqual([
        { method: 'PUT', url: '/v2/app/blobs/uploads/?digest=sha256%3Aab&n=2', header: '1', body: 'abc' },
        { method: 'PUT', url: '/v2/app/blobs/uploads/?digest=sha256%3Aab&n=2', header: '1', body: 'abc' },
      ]);
      await agent.close();
    });
  });

  describe('Class: HttpClient', () => {
    let server: Server;
    let origin: string;
    /** What the server does for a path: answer, stall after a first part, or never answer. */
    const MiB = 1024 * 1024;

    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/stall') {
          // 1 MiB, then nothing more of the 2 MiB promised
          res.writeHead(200, { 'content-length': String(2 * MiB) });
          res.write(Buffer.alloc(MiB, 1));
          return;
        }
        if (req.url === '/slow-headers') return; // never answers
        if (req.url === '/big') {
          res.writeHead(200, { 'content-length': String(8 * MiB) });
          res.end(Buffer.alloc(8 * MiB, 2));
          return;
        }
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => res.writeHead(200, { 'x-method': req.method ?? '' }).end(`got ${body}`));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const client = (bodyTimeoutMs = 60_000, headersTimeoutMs = 60_000) =>
      new HttpClient({ rejectUnauthorized: true, headersTimeoutMs, bodyTimeoutMs });

    it('answers a GET, and a PUT with a body, with status, headers and body', async () => {
      // Prepare
      const http = client();

      // Act
      const get = await http.request(new URL('/x', origin), { method: 'GET', headers: {}, body: null });
      const put = await http.request(new URL('/x', origin), { method: 'PUT', headers: {}, body: 'abc' });

      // Assess
      expect([get.statusCode, get.headers['x-method'], await text(get.body)]).toEqual([200, 'GET', 'got ']);
      expect([put.statusCode, put.headers['x-method'], await text(put.body)]).toEqual([
        200,
        'PUT',
        'got abc',
      ]);
      await http.close();
    });

    it('keeps the connection of a response that is discarded once wholly received, for a later request', async () => {
      // Prepare
      const http = client();
      let connections = 0;
      const count = () => connections++;
      server.on('connection', count);

      // Act: a GET whose short body is never read, discarded, then one more GET
      const get = await http.request(new URL('/x', origin), { method: 'GET', headers: {}, body: null });
      await new Promise((resolve) => setTimeout(resolve, 50)); // its body arrives, unread
      discard(get.body);
      await new Promise(setImmediate); // the connection goes back to the pool once the drained body has ended
      const last = await http.request(new URL('/x', origin), { method: 'GET', headers: {}, body: null });
      await text(last.body);

      // Assess
      server.off('connection', count);
      expect(connections).toBe(1);
      await http.close();
    });

    it('fails a body that stalls mid-way after the body timeout, with an error a resume retries', async () => {
      // Prepare
      const http = client(300);
      const res = await http.request(new URL('/stall', origin), { method: 'GET', headers: {}, body: null });

      // Act
      const started = Date.now();
      const error = await text(res.body).then(
        () => undefined,
        (e: unknown) => e,
      );

      // Assess
      expect(error).toMatchObject({
        code: 'IMAGEVAULT_BODY_TIMEOUT',
        message: expect.stringMatching(/Body Timeout/),
      });
      expect(isRetryableBodyError(error)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      await http.close();
    });

    it('does not count the time the reader pauses against the body timeout', async () => {
      // Prepare: a body far larger than the socket buffers, read only after three body timeouts
      const http = client(200);
      const res = await http.request(new URL('/big', origin), { method: 'GET', headers: {}, body: null });

      // Act
      await new Promise((resolve) => setTimeout(resolve, 600));
      let bytes = 0;
      for await (const c of res.body) bytes += (c as Buffer).length;

      // Assess
      expect(bytes).toBe(8 * MiB);
      await http.close();
    });

    it('fails a request whose response headers do not come within the headers timeout', async () => {
      // Prepare
      const http = client(60_000, 200);

      // Act
      const error = await http
        .request(new URL('/slow-headers', origin), { method: 'GET', headers: {}, body: null })
        .then(
          () => undefined,
          (e: unknown) => e,
        );

      // Assess
      expect(error).toMatchObject({
        code: 'IMAGEVAULT_HEADERS_TIMEOUT',
        message: expect.stringMatching(/Headers Timeout/),
      });
      expect(isRetryableNetworkError(error)).toBe(true);
      await http.close();
    });
  });
});

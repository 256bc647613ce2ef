import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as undici from 'undici';
import { request, undiciAgent } from '../../../lib/registry/http';

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

    it('sends method, path with query, headers and body to the URL, as undici.request does', async () => {
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
      expect([ours.statusCode, ours.headers['x-answer'], await ours.body.text()]).toEqual([
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
});

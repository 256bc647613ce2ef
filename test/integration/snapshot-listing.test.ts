/**
 * A prefix or --all-tags snapshot protects everything it can: a bad name in a registry's catalog or tag list, or a
 * repository whose tags cannot be listed, is reported (with the registry) and skipped, the rest is snapshotted, and
 * the run exits 1 at the end with a summary.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushStandardFixtures, type PushedFixtures } from '../../fixtures';
import { testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

describe('snapshot of a prefix or all tags, with bad names in the listings (real registry behind a proxy)', () => {
  let fx: PushedFixtures;
  let proxy: Server;
  let host: string;

  beforeAll(async () => {
    const registry = testbed().registry;
    fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: 'listing' });
    const [upstreamHost, upstreamPort] = registry.split(':');
    // In front of the real registry: the catalog also names two repositories no registry should hold, and one
    // whose tag list fails; the multi repository's tag list also names a tag that is not one.
    proxy = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      if (url.pathname === '/v2/_catalog') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            repositories: [
              'listing/Bad Name',
              'listing/docker',
              'listing/gone',
              'listing/multi',
              'listing/UPPER',
            ],
          }),
        );
        return;
      }
      if (url.pathname === '/v2/listing/gone/tags/list') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
        return;
      }
      if (url.pathname === '/v2/listing/multi/tags/list') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name: 'listing/multi', tags: ['1', 'not a tag!'] }));
        return;
      }
      const upstream = request(
        {
          host: upstreamHost,
          port: Number(upstreamPort),
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  }, 120_000);

  afterAll(() => proxy.close());

  it('skips and names what cannot be taken, snapshots the rest, and exits 1 with a summary', async () => {
    const store = tempDir();
    const r = await cli('--json', '--store', store, 'snapshot', `${host}/listing/`);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as {
      snapshots: { reference: string }[];
      failures: unknown[];
      skipped: { registry: string; name: string; reason: string }[];
    };
    expect(out.snapshots.map((s) => s.reference).sort()).toEqual(
      [
        `${host}/listing/docker:1@${fx.docker.digest}`,
        `${host}/listing/multi:1@${fx.multiLayer.digest}`,
      ].sort(),
    );
    expect(out.failures).toEqual([]);
    expect(out.skipped).toEqual([
      { registry: host, name: 'listing/Bad Name', reason: expect.stringMatching(/listing\/Bad Name/) },
      { registry: host, name: 'listing/gone', reason: expect.stringMatching(/404 NAME_UNKNOWN/) },
      { registry: host, name: 'listing/multi:not a tag!', reason: expect.stringMatching(/not a tag!/) },
      { registry: host, name: 'listing/UPPER', reason: expect.stringMatching(/listing\/UPPER/) },
    ]);
    // Each skipped name has its line on stderr, with the registry.
    for (const name of ['listing/Bad Name', 'listing/gone', 'listing/multi:not a tag!', 'listing/UPPER'])
      expect(r.stderr).toContain(`imagevault: ${host}/${name}: SKIPPED: `);
  });

  it('says the same in the human summary', async () => {
    const r = await cli('--store', tempDir(), 'snapshot', '--all-tags', `${host}/listing/multi`);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`SKIPPED ${host}/listing/multi:not a tag!: `);
    expect(r.stdout).toContain('1 snapshotted, 0 failed, 1 skipped');
  });
});

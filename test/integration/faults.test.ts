import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { LayoutBuilder, pushLayout, type BuiltImage } from '../../fixtures';
import { startFaultyProxy, type FaultyProxy } from '../testbed/faulty-proxy';
import { testbed } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

/*
 * Every fault survived, or ended in one clear error: the CLI snapshots through a faulty proxy in front of the real
 * registry (test/testbed/faulty-proxy.ts), and each test names the promise it checks.
 */

const MiB = 1024 * 1024;

describe('snapshots through a faulty network', () => {
  const registry = testbed().registry;
  let proxy: FaultyProxy;
  let image: BuiltImage;
  /** The 4 MiB layer the faults are aimed at. */
  let big: string;
  let ref: string;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    const dir = tempDir();
    const b = new LayoutBuilder(dir);
    const layers = [await b.layer({ sizeBytes: 4 * MiB }), await b.layer({ sizeBytes: 8 * 1024 })];
    image = await b.image({ name: 'faults', layers });
    big = layers[0].digest;
    await pushLayout(dir, 'faults', `${registry}/faults/app:1`);
    proxy = await startFaultyProxy(registry);
    ref = `${proxy.address}/faults/app:1`;
  });

  afterAll(() => proxy.close());

  beforeEach(() => proxy.reset());

  afterEach(() => {
    for (const k of ['IMAGEVAULT_IDLE_TIMEOUT', 'IMAGEVAULT_TIMEOUT']) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
  });

  const bigPath = () => new RegExp(`/v2/faults/app/blobs/${big}$`);
  const bigGets = () => proxy.requests.filter((r) => r.method === 'GET' && bigPath().test(r.path));

  async function snapshot(vault: string, ...extra: string[]) {
    return cli('--store', `file://${vault}`, ...extra, 'snapshot', '--no-base', ref);
  }

  /** The vault holds the image whole: `imagevault verify` re-hashes every blob and walks the graph. */
  async function expectVerified(vault: string): Promise<void> {
    const v = await cli('--store', `file://${vault}`, 'verify');
    expect(v.code).toBe(0);
    const { history } = await cliJson<{ history: { descriptor: { digest: string } }[] }>(
      '--store',
      `file://${vault}`,
      'history',
      'faults/app:1',
    );
    expect(history.map((h) => h.descriptor.digest)).toEqual([image.digest]);
  }

  it('a reset mid-blob is resumed with Range and the snapshot verifies', async () => {
    // Prepare
    const vault = tempDir();
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'reset', afterBytes: MiB } });
    // Act
    const r = await snapshot(vault);
    // Assess
    expect(r.code).toBe(0);
    expect(proxy.counts.reset).toBe(1);
    const gets = bigGets();
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeUndefined();
    expect(gets[1].range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(gets[1].status).toBe(206);
    await expectVerified(vault);
  });

  it('a connection closed mid-blob (a premature end) is resumed and the snapshot verifies', async () => {
    const vault = tempDir();
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'close', afterBytes: 3 * MiB } });
    const r = await snapshot(vault);
    expect(r.code).toBe(0);
    expect(proxy.counts.close).toBe(1);
    expect(bigGets().map((g) => g.status)).toEqual([200, 206]);
    await expectVerified(vault);
  });

  it('a body shorter than the blob is completed with Range and the snapshot verifies', async () => {
    const vault = tempDir();
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'short', bytes: 2 * MiB } });
    const r = await snapshot(vault);
    expect(r.code).toBe(0);
    expect(bigGets().map((g) => g.range)).toEqual([undefined, `bytes=${2 * MiB}-`]);
    await expectVerified(vault);
  });

  it('a registry that ignores Range is read again from the start and the snapshot verifies', async () => {
    const vault = tempDir();
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'reset', afterBytes: MiB } });
    proxy.inject({ path: bigPath(), method: 'GET', ranged: true, fault: { kind: 'ignore-range' } });
    const r = await snapshot(vault);
    expect(r.code).toBe(0);
    expect(proxy.counts['ignore-range']).toBe(1);
    // The second answer was a 200 with everything; the bytes already passed on were dropped from it.
    expect(bigGets().map((g) => g.status)).toEqual([200, 200]);
    await expectVerified(vault);
  });

  it('a hang mid-body fails after the idle timeout and is retried', async () => {
    // Prepare: a one-second idle timeout, and a body that stops after 1 MiB
    const vault = tempDir();
    process.env.IMAGEVAULT_IDLE_TIMEOUT = '1';
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'hang', afterBytes: MiB } });
    const started = Date.now();
    // Act
    const r = await snapshot(vault);
    // Assess
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(proxy.counts.hang).toBe(1);
    expect(bigGets()[1].range).toMatch(/^bytes=[1-9]\d*-$/);
    await expectVerified(vault);
  });

  it("wrong bytes are never stored under the digest, and the failure is said to be the source's", async () => {
    // Prepare: one byte of the big layer flipped on the way (same size, other content)
    const vault = tempDir();
    proxy.inject({ path: bigPath(), method: 'GET', fault: { kind: 'flip', offset: 3 * MiB + 17 } });
    // Act
    const r = await snapshot(vault);
    // Assess
    expect(r.code).toBe(1);
    // The bytes came wrong from the registry: the failure is the source's, though the vault is what refused them
    expect(r.stdout + r.stderr).toMatch(new RegExp(`fetch ${big} \\(.*\\) at source: .*digest mismatch`));
    expect(r.stdout + r.stderr).toContain(`${proxy.address}/faults/app`);
    expect(existsSync(path.join(vault, 'blobs', 'sha256', big.slice(7)))).toBe(false);
    expect(existsSync(path.join(vault, 'blobs', 'sha256', image.digest.slice(7)))).toBe(false);
    const list = await cliJson<{ tags: unknown[] }>('--store', `file://${vault}`, 'list', 'faults/app');
    expect(list.tags).toEqual([]);
  });

  it('a reset storm mid-body ends after the retry budget in one error naming the image and the source', async () => {
    // Prepare: every GET of the big layer is reset after a few bytes
    const vault = tempDir();
    proxy.inject({
      path: bigPath(),
      method: 'GET',
      times: 100,
      fault: { kind: 'reset', afterBytes: 64 * 1024 },
    });
    // Act
    const r = await snapshot(vault);
    // Assess: five bodies (the default attempts), then a failure at the source, not the vault
    expect(r.code).toBe(1);
    expect(bigGets()).toHaveLength(5);
    const failure = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(big));
    expect(failure.length).toBeGreaterThan(0);
    expect(failure[0]).toContain(`${proxy.address}/faults/app`);
    expect(failure[0]).toMatch(/fetch sha256:[0-9a-f]{64} .* at source: GET .*response body: .*5 attempts/);
    expect(existsSync(path.join(vault, 'blobs', 'sha256', big.slice(7)))).toBe(false);
  });

  it('a 503 storm ends in one clear error naming the image', async () => {
    const vault = tempDir();
    proxy.inject({
      path: bigPath(),
      method: 'GET',
      times: 100,
      fault: { kind: 'status', status: 503, retryAfter: 0 },
    });
    const r = await snapshot(vault);
    expect(r.code).toBe(1);
    expect(proxy.counts.status).toBe(5);
    const failure = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(big));
    expect(failure[0]).toContain(`${proxy.address}/faults/app`);
    expect(failure[0]).toMatch(/at source: GET .*: 503 UNAVAILABLE/);
  });

  it('a registry refusing uploads during a restore is named as the destination', async () => {
    // Prepare: a vault holding the image, and a registry behind the proxy that answers every blob upload with 503
    const vault = tempDir();
    expect((await snapshot(vault)).code).toBe(0);
    proxy.reset();
    proxy.inject({
      path: /\/v2\/faults\/restored\/blobs\/uploads\/.+/,
      method: 'PUT',
      times: 100,
      fault: { kind: 'status', status: 503 },
    });
    // Act
    const r = await cli(
      '--store',
      `file://${vault}`,
      'restore',
      'faults/app:1',
      '--to',
      `${proxy.address}/faults/restored:1`,
    );
    // Assess
    expect(r.code).toBe(1);
    expect(proxy.counts.status).toBeGreaterThan(0);
    expect(r.stdout + r.stderr).toMatch(
      /push sha256:[0-9a-f]{64} .* at destination: PUT .*: 503 UNAVAILABLE/,
    );
  });

  it('a 429 with Retry-After is waited out and the snapshot completes', async () => {
    const vault = tempDir();
    proxy.inject({
      path: /\/manifests\//,
      times: 1,
      fault: { kind: 'status', status: 429, retryAfter: 1 },
    });
    const started = Date.now();
    const r = await snapshot(vault);
    expect(r.code).toBe(0);
    expect(proxy.counts.status).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    await expectVerified(vault);
  });

  it('--timeout bounds the wait for a registry that does not answer', async () => {
    // Prepare: manifest requests get no answer for 20 s (with the default timeout, the snapshot would wait it out)
    const vault = tempDir();
    proxy.inject({ path: /\/manifests\//, times: 100, fault: { kind: 'delay', ms: 20_000 } });
    const started = Date.now();
    // Act
    const r = await snapshot(vault, '--timeout', '0.3');
    // Assess: five attempts, each ended by the timeout (undici's timer ticks at about 1 s), with backoff between
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(12_000);
    expect(proxy.counts.delay).toBe(5);
    expect(r.stdout + r.stderr).toContain(ref);
    expect(r.stdout + r.stderr).toMatch(/Headers Timeout/i);
  });

  it('IMAGEVAULT_TIMEOUT does what --timeout does', async () => {
    const vault = tempDir();
    process.env.IMAGEVAULT_TIMEOUT = '0.3';
    proxy.inject({ path: /\/manifests\//, times: 100, fault: { kind: 'delay', ms: 20_000 } });
    const started = Date.now();
    const r = await snapshot(vault);
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(12_000);
    expect(proxy.counts.delay).toBe(5);
  });

  it('refuses a timeout that is not a positive number of seconds, naming where it came from', async () => {
    const vault = tempDir();
    const flag = await snapshot(vault, '--timeout', '0');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--timeout <seconds>.*must be a number of seconds greater than 0/);
    process.env.IMAGEVAULT_IDLE_TIMEOUT = 'soon';
    const env = await snapshot(vault);
    expect(env.code).toBe(2);
    expect(env.stderr).toContain(
      'IMAGEVAULT_IDLE_TIMEOUT must be a number of seconds greater than 0, got "soon"',
    );
    expect(proxy.requests).toHaveLength(0);
  });
});

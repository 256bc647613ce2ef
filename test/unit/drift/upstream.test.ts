import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { driftCheckText } from '../../../lib/cli/commands/drift';
import type { CommandContext } from '../../../lib/cli/context';
import { registerDriftCommand } from '../../../lib/cli/program';
import { openVault } from '../../../lib/content/open';
import type { UpstreamCheckReport } from '../../../lib/drift/upstream';
import { UpstreamLog, upstreamPrefix } from '../../../lib/drift/upstream-state';
import { parseRateLimitRemaining } from '../../../lib/registry';
import type { Registries } from '../../../lib/registry';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

describe('Function: parseRateLimitRemaining', () => {
  it.each([
    ['95;w=21600', 95],
    ['0;w=21600', 0],
    [' 7', 7],
    ['', undefined],
    ['unlimited', undefined],
    [undefined, undefined],
  ])('reads %p as %p', (value, expected) => {
    expect(parseRateLimitRemaining(value)).toBe(expected);
  });
});

describe('Class: UpstreamLog', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'imagevault-upstream-state-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keys state by the normalised reference', () => {
    expect(upstreamPrefix('ruby:2.7')).toBe('imagevault/upstream/docker.io/library/ruby/_tags/2.7/');
    expect(() => upstreamPrefix(`ruby@${D1}`)).toThrow(/must name a tag/);
  });

  it('appends observations and returns them oldest first', async () => {
    // Prepare
    const state = new UpstreamLog((await openVault(dir)).store);
    const ref = 'docker.io/library/ruby:2.7';

    // Act
    await state.record({ reference: ref, digest: D2, observedAt: '2026-03-02T00:00:00.000Z', via: 'head' });
    await state.record({ reference: ref, digest: D1, observedAt: '2026-03-01T00:00:00.000Z', via: 'get' });

    // Assess
    expect((await state.observations(ref)).map((o) => o.digest)).toEqual([D1, D2]);
    expect((await state.latest(ref))?.digest).toBe(D2);
  });

  it('records a transition as alerted exactly once', async () => {
    // Prepare
    const state = new UpstreamLog((await openVault(dir)).store);
    const t = {
      reference: 'docker.io/library/ruby:2.7',
      oldDigest: D1,
      newDigest: D2,
      alertedAt: '2026-03-01T00:00:00.000Z',
    };

    // Act
    const first = await state.markAlerted(t);
    const second = await state.markAlerted({ ...t, alertedAt: '2026-03-01T01:00:00.000Z' });

    // Assess
    expect([first, second]).toEqual([true, false]);
    expect(await state.alerted(t.reference, D1, D2)).toBe(true);
    expect(await state.alerted(t.reference, D2, D1)).toBe(false);
    expect(await state.transitions(t.reference)).toEqual([t]);
  });
});

describe('Function: driftCheckText', () => {
  it('lists moved tags with the images to rebuild, and the request counts', () => {
    // Prepare
    const report: UpstreamCheckReport = {
      checkedAt: '2026-03-03T06:00:00.000Z',
      requests: { head: 3, get: 1 },
      results: [
        {
          status: 'current',
          reference: 'docker.io/library/alpine:3.19',
          digest: D1,
          otherPlatformsChanged: true,
        },
        {
          status: 'moved',
          reference: 'docker.io/library/ruby:2.7',
          digest: D2,
          moves: [
            {
              reference: 'docker.io/library/ruby:2.7',
              oldDigest: D1,
              newDigest: D2,
              platforms: [{ platform: 'linux/amd64', oldManifest: D1, newManifest: D2 }],
              affected: [{ repository: 'app', digest: D1, tags: ['1.4'], platforms: ['linux/amd64'] }],
              detectedAt: '2026-03-03T06:00:00.000Z',
              alert: 'not-sent',
            },
          ],
        },
        { status: 'deferred', reference: 'docker.io/library/node:20', reason: 'rate limit used up' },
      ],
    };

    // Act
    const text = driftCheckText(report);

    // Assess
    expect(text.split('\n')).toEqual([
      `current\tdocker.io/library/alpine:3.19\t${D1}\t(changed only on platforms not in use)`,
      `MOVED\tdocker.io/library/ruby:2.7\t${D1} -> ${D2}`,
      `\tlinux/amd64: ${D1} -> ${D2}`,
      `\tbuilt on the old base: app@${D1} (1.4)`,
      'deferred\tdocker.io/library/node:20\trate limit used up',
      '3 upstream tags checked at 2026-03-03T06:00:00.000Z: 1 moved; 3 HEAD, 1 GET',
    ]);
  });
});

describe('Function: registerDriftCommand', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'imagevault-drift-cli-'))));
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exitCode = undefined;
  });

  it('reports nothing to check and exits 0 for a vault without bases', async () => {
    // Prepare
    const program = new Command('imagevault').exitOverride();
    const ctx: CommandContext = {
      opts: () => ({ store: dir, json: true, insecure: false, concurrency: 1 }),
      registries: () => ({}) as Registries,
      vault: () => openVault(dir),
    };
    registerDriftCommand(program, async () => ctx);
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      return true;
    });

    // Act
    try {
      await program.parseAsync(['node', 'imagevault', 'drift', 'check']);
    } finally {
      spy.mockRestore();
    }

    // Assess
    expect(JSON.parse(out.join(''))).toMatchObject({ results: [], requests: { head: 0, get: 0 } });
    expect(process.exitCode ?? 0).toBe(0);
  });
});

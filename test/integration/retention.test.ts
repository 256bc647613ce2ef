/**
 * Retention through the CLI on a directory vault: the plan's reasons, holds and in-use beat the rules, referrers
 * of kept images are kept, the plan writes nothing, apply appends forget records and erases nothing, history and
 * restore say "forgotten", verify stays clean, bad policies are one line.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DirectoryObjectStore, Vault } from '../../lib/content';
import { testbed } from '../testbed/env';
import { putImage, recordRunning, snapshottedImage, tempDir, type TestImage } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

/** Every file under root, relative: what "changes nothing" is checked against. */
function listKeys(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

const day = (d: number) => new Date(Date.UTC(2026, 0, d, 9)).toISOString();
const sizeOf = (img: TestImage) => [...img.blobs.values()].reduce((n, b) => n + b.length, 0);

describe('imagevault retention plan / apply', () => {
  const root = tempDir();
  const store = pathToFileURL(root).href;
  const policyFile = path.join(tempDir(), 'retention.json');
  const dev: TestImage[] = [];
  let prod: TestImage;
  let release: TestImage;
  let untagged: TestImage;
  let signature: TestImage;
  let other: TestImage;
  let runningWhere: string;

  beforeAll(async () => {
    const vault = new Vault(new DirectoryObjectStore(root));
    await vault.init();
    // dev: A B C D E pushed on days 1..5; A is held, B runs, C is dropped, D and E are the last two.
    for (const [i, seed] of ['A', 'B', 'C', 'D', 'E'].entries())
      dev.push(await snapshottedImage(vault, 'team/app', 'dev', `dev-${seed}`, {}, day(i + 1)));
    prod = await snapshottedImage(vault, 'team/app', 'prod', 'prod-1', {}, day(1));
    release = await snapshottedImage(vault, 'team/app', 'release-1', 'rel-1', {}, day(1));
    await vault.recordTag({
      repository: 'team/app',
      tag: 'prod',
      action: 'push',
      descriptor: dev[4].manifest,
      observedAt: day(6),
      source: { kind: 'test' },
    });
    const record = (img: TestImage, at: string) => ({
      repository: 'team/app',
      descriptor: img.manifest,
      firstSnapshotAt: at,
      lastSnapshotAt: at,
      blobs: 3,
      bytes: 1,
      referrers: [],
      extensions: {},
    });
    untagged = await putImage(vault, [Buffer.from('by-digest')]);
    await vault.putImage(record(untagged, day(2)));
    // A signature of E, snapshotted as an image of its own: kept because E is.
    signature = await putImage(vault, [Buffer.from('sig-of-E')], { subject: dev[4].manifest });
    await vault.putImage(record(signature, day(5)));
    other = await snapshottedImage(vault, 'other/svc', 'old', 'other-old', {}, day(1));
    await snapshottedImage(vault, 'other/svc', 'old', 'other-new', {}, day(2));
    runningWhere = await recordRunning(
      vault,
      { repository: 'team/app', digest: dev[1].manifest.digest },
      { cluster: 'prod', service: 'web', at: day(20) },
    );
    writeFileSync(
      policyFile,
      JSON.stringify({
        rules: [{ prefix: 'team/', keepLast: 2, keepTags: ['prod', 'release-*'], keepUntagged: false }],
      }),
    );
    expect(
      (await cli('--store', store, 'hold', `team/app@${dev[0].manifest.digest}`, '--reason', 'legal')).code,
    ).toBe(0);
  });

  const now = day(25);

  it('plans: forgets only what no rule, hold, use or kept referrer keeps, with reasons, and writes nothing', async () => {
    const before = listKeys(root);
    const plan = await cliJson<{
      forget: { descriptor: { digest: string }; reason: string }[];
      kept: { digest: string; reasons: string[] }[];
      freed: { blobs: number; bytes: number };
      repositories: { repository: string; rule?: string; forget: number }[];
    }>('--store', store, 'retention', 'plan', '--policy', policyFile, '--now', now);
    expect(listKeys(root)).toEqual(before);
    expect(plan.forget.map((f) => f.descriptor.digest).sort()).toEqual(
      [dev[2].manifest.digest, untagged.manifest.digest].sort(),
    );
    const reasons = new Map(plan.kept.map((k) => [k.digest, k.reasons.join('; ')]));
    expect(reasons.get(dev[0].manifest.digest)).toContain('held since');
    expect(reasons.get(dev[1].manifest.digest)).toContain(`in use: ${runningWhere}`);
    expect(reasons.get(dev[3].manifest.digest)).toContain('among the last 2 pushes of :dev');
    expect(reasons.get(prod.manifest.digest)).toContain('keepTags prod');
    expect(reasons.get(release.manifest.digest)).toContain('keepTags release-*');
    expect(reasons.get(signature.manifest.digest)).toContain(
      `referrer of kept team/app@${dev[4].manifest.digest}`,
    );
    // other/ has no rule: untouched.
    expect(reasons.get(other.manifest.digest)).toContain('no retention rule');
    expect(plan.freed).toEqual({ blobs: 6, bytes: sizeOf(dev[2]) + sizeOf(untagged) });
    const human = await cli('--store', store, 'retention', 'plan', '--policy', policyFile, '--now', now);
    expect(human.stdout).toContain(`team/app (rule "team/"): 9 images, keep 7, would forget 2`);
    expect(human.stdout).toContain(`frees 6 blobs`);
  });

  it('applies: appends forget records, history marks the push forgotten, restore refuses it, verify is clean', async () => {
    const r = await cliJson<{ forgotten: number }>(
      '--store',
      store,
      'retention',
      'apply',
      '--policy',
      policyFile,
      '--now',
      now,
      '--by',
      'ops',
    );
    expect(r.forgotten).toBe(2);
    const history = await cli('--store', store, 'history', 'team/app:dev');
    const lines = history.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[2]).toContain(dev[2].manifest.digest);
    expect(lines[2]).toMatch(/FORGOTTEN .* by ops \(retention\)/);
    expect(lines.filter((l) => l.includes('FORGOTTEN'))).toHaveLength(1);
    // The image record and its history stay: nothing erased.
    expect(listKeys(root).filter((k) => k.includes(dev[2].manifest.digest.slice(7)))).toEqual(
      expect.arrayContaining([
        `imagevault/repositories/team/app/_images/sha256/${dev[2].manifest.digest.slice(7)}.json`,
      ]),
    );
    const restore = await cli(
      '--store',
      store,
      'restore',
      `team/app@${dev[2].manifest.digest}`,
      '--to',
      `${testbed().registry}/r/app`,
    );
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain('was forgotten by retention');
    // A second apply forgets nothing more.
    const again = await cliJson<{ forgotten: number; plan: { alreadyForgotten: number } }>(
      '--store',
      store,
      'retention',
      'apply',
      '--policy',
      policyFile,
      '--now',
      now,
    );
    expect(again).toMatchObject({ forgotten: 0, plan: { alreadyForgotten: 2 } });
    expect((await cli('--store', store, 'verify')).code).toBe(0);
  });

  it('list marks a forgotten image, and a bulk restore at a time it was tagged names it as forgotten', async () => {
    const listed = await cliJson<{ images: { digest: string; forgotten?: { reason: string } }[] }>(
      '--store',
      store,
      'list',
      'team/app',
    );
    const forgotten = listed.images.filter((i) => i.forgotten).map((i) => i.digest);
    expect(forgotten).toContain(dev[2].manifest.digest);
    expect(forgotten).not.toContain(dev[4].manifest.digest);
    const human = await cli('--store', store, 'list', 'team/app');
    const line = human.stdout.split('\n').find((l) => l.includes(`@${dev[2].manifest.digest}`));
    expect(line).toMatch(/FORGOTTEN \S+ \(/);
    // On day 3 team/app:dev was C, which retention forgot: the bulk restore says so in one line and fails.
    const atDay3 = new Date(Date.parse(day(3)) + 3600_000).toISOString();
    const r = await cli(
      '--store',
      store,
      'restore',
      '--all',
      '--prefix',
      'team/app',
      '--at',
      atDay3,
      '--dry-run',
      '--to',
      `${testbed().registry}/bulk`,
    );
    expect(r.code).toBe(1);
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('FAILED'));
    expect(failed).toEqual([expect.stringContaining('team/app:dev at ')]);
    expect(failed[0]).toContain(`${dev[2].manifest.digest}, forgotten by retention`);
  });

  it.each([
    ['{"rules": []}', 'rules: needs at least one rule'],
    ['{"rules": [{"prefix": "team/"}]}', 'rules[0]: keeps nothing'],
    ['{"rules": [{"prefix": "a", "keepWithin": "30x"}]}', 'rules[0].keepWithin "30x": is not a duration'],
    ['{"rules": [{"prefix": "a", "keepLast": 0}]}', 'rules[0].keepLast 0:'],
    ['{"rules": [{"prefix": "a", "keepLast": 1, "keep": 2}]}', 'Unrecognized key'],
    ['not json', 'not JSON'],
  ])('refuses the policy %s in one line naming the file and field', async (text, message) => {
    const file = path.join(tempDir(), 'bad.json');
    writeFileSync(file, text);
    const r = await cli('--store', store, 'retention', 'plan', '--policy', file);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${file}: `);
    expect(r.stderr).toContain(message);
  });
});

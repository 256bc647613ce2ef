import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DirectoryObjectStore } from '../../../lib/content';
import {
  Inventory,
  isInUse,
  placementLabel,
  type Placement,
  type ScanRecord,
  type Sighting,
} from '../../../lib/content/inventory';
import { tempDir } from '../helpers';

const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

const web = (task: string): Placement => ({
  kind: 'ecs',
  region: 'eu-west-1',
  clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/prod',
  cluster: 'prod',
  group: 'service:web',
  service: 'web',
  containers: ['app'],
  instances: [task],
});

const sighting = (digest: string, placement: Placement, source = 'ecs:eu-west-1'): Sighting => ({
  repository: 'team/app',
  digest,
  image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app@${digest}`,
  source,
  placement,
});

const scan = (at: string, sightings: Sighting[], ok = true, source = 'ecs:eu-west-1'): ScanRecord => ({
  startedAt: at,
  finishedAt: at,
  sources: [
    { source, ok, sightings: sightings.length, unresolved: [], ...(ok ? {} : { error: 'AccessDenied' }) },
  ],
  sightings,
  gaps: [],
});

describe('Class: Inventory', () => {
  it('keeps first and last seen per workload, and one scan record per scan, never overwritten', async () => {
    // Prepare
    const dir = tempDir();
    const inv = new Inventory(new DirectoryObjectStore(dir));
    // Act: two tasks of one service run D1; later only D2 runs
    await inv.record(
      scan('2026-11-01T00:00:00.000Z', [sighting(D1, web('task/1')), sighting(D1, web('task/2'))]),
    );
    await inv.record(scan('2026-11-02T00:00:00.000Z', [sighting(D1, web('task/3'))]));
    await inv.record(scan('2026-11-03T00:00:00.000Z', [sighting(D2, web('task/4'))]));
    // Assess
    const [d1] = await inv.where('team/app', D1);
    expect(d1).toMatchObject({
      where: 'ecs:eu-west-1/prod/web',
      firstSeen: '2026-11-01T00:00:00.000Z',
      lastSeen: '2026-11-02T00:00:00.000Z',
      running: false,
    });
    expect((await inv.where('team/app', D1)).length).toBe(1);
    expect(await inv.where('team/app', D2)).toEqual([
      expect.objectContaining({ running: true, firstSeen: '2026-11-03T00:00:00.000Z' }),
    ]);
    expect(await inv.where('other/app', D2)).toEqual([]);
    const scans = readdirSync(path.join(dir, 'imagevault/inventory/scans'));
    expect(scans).toHaveLength(3);
    const first = JSON.parse(
      readFileSync(path.join(dir, 'imagevault/inventory/scans', scans.sort()[0]), 'utf8'),
    );
    expect(first.sightings.map((s: Sighting) => s.placement.instances[0])).toEqual(['task/1', 'task/2']);
  });

  it('answers inUseSince by last seen, and isInUse by now or within a window', async () => {
    const inv = new Inventory(new DirectoryObjectStore(tempDir()));
    await inv.record(scan('2026-11-01T00:00:00.000Z', [sighting(D1, web('t1'))]));
    await inv.record(scan('2026-11-05T00:00:00.000Z', [sighting(D2, web('t2'))]));
    const since = await inv.inUseSince(new Date('2026-11-03T00:00:00Z'));
    expect(since.map((e) => e.digest)).toEqual([D2]);
    expect((await inv.inUseSince(new Date('2026-10-01T00:00:00Z'))).map((e) => e.digest).sort()).toEqual([
      D1,
      D2,
    ]);
    const now = new Date('2026-11-05T00:00:00Z');
    expect(await isInUse(inv, 'team/app', D2)).toBe(true);
    expect(await isInUse(inv, 'team/app', D1)).toBe(false);
    expect(await isInUse(inv, 'team/app', D1, { withinMs: 5 * 86400_000, now })).toBe(true);
    expect(await isInUse(inv, 'team/app', D1, { withinMs: 3 * 86400_000, now })).toBe(false);
  });

  it('keeps what a failed source ran as running: a scan that failed proves nothing stopped', async () => {
    const inv = new Inventory(new DirectoryObjectStore(tempDir()));
    await inv.record(scan('2026-11-01T00:00:00.000Z', [sighting(D1, web('t1'))]));
    await inv.record(scan('2026-11-02T00:00:00.000Z', [], false));
    expect(await inv.where('team/app', D1)).toEqual([expect.objectContaining({ running: true })]);
    const [state] = await inv.sources();
    expect(state).toEqual({
      source: 'ecs:eu-west-1',
      lastScanAt: '2026-11-02T00:00:00.000Z',
      lastOkAt: '2026-11-01T00:00:00.000Z',
    });
    // A later good scan without it: no longer running, still listed with its last sighting.
    await inv.record(scan('2026-11-03T00:00:00.000Z', []));
    expect(await inv.where('team/app', D1)).toEqual([
      expect.objectContaining({ running: false, lastSeen: '2026-11-01T00:00:00.000Z' }),
    ]);
  });

  it('refuses to answer when a running record is unreadable, naming it', async () => {
    const dir = tempDir();
    const inv = new Inventory(new DirectoryObjectStore(dir));
    await inv.record(scan('2026-11-01T00:00:00.000Z', [sighting(D1, web('t1'))]));
    const recordDir = path.join(dir, `imagevault/inventory/running/team/app/@sha256/${'a'.repeat(64)}`);
    const [file] = readdirSync(recordDir);
    writeFileSync(path.join(recordDir, file), '{"repository": "team/app"');
    await expect(inv.inUseSince(new Date(0))).rejects.toThrow(
      /inventory record .*running\/team\/app.* unreadable/,
    );
  });

  it('labels each kind of placement', () => {
    expect(
      placementLabel({
        kind: 'kubernetes',
        cluster: 'prod-eks',
        namespace: 'shop',
        workload: 'Deployment/api',
        containers: [],
        instances: [],
      }),
    ).toBe('kubernetes:prod-eks/shop/Deployment/api');
    expect(
      placementLabel({
        kind: 'lambda',
        region: 'us-east-1',
        function: 'resize',
        functionArn: 'arn',
        instances: [],
      }),
    ).toBe('lambda:us-east-1/resize');
  });
});

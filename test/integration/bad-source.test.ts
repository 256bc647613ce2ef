import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pushStandardFixtures } from '../../fixtures';
import { TESTBED_DIR, startRegistry } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

// Layers under 1 MiB are hashed as they stream; larger ones on a second thread, from the file as it is written.
const SIZES = [
  ['32 KiB layers', 32 * 1024],
  ['3 MiB layers', 3 * 1024 * 1024],
] as const;

describe.each(SIZES)('a registry serving wrong bytes (%s)', (_label, layerSize) => {
  it('fails the snapshot naming the image and the blob, and stores nothing under that digest', async () => {
    // Prepare: a registry of our own whose stored layer we corrupt behind its back (same size, other bytes)
    const name = `liar-${layerSize}-${Date.now()}`;
    const registry = startRegistry(name);
    const fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: 'bad', layerSize });
    const layer = fx.plainTar.layers[1].digest;
    const file = path.join(
      TESTBED_DIR,
      name,
      'data',
      'docker/registry/v2/blobs/sha256',
      layer.slice(7, 9),
      layer.slice(7),
      'data',
    );
    const bytes = readFileSync(file);
    bytes[bytes.length - 600] ^= 0x01;
    writeFileSync(file, bytes);
    const vault = tempDir();
    // Act
    const r = await cli('--store', `file://${vault}`, 'snapshot', fx.plainTar.ref);
    // Assess
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(fx.plainTar.ref);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`fetch ${layer} \\(.*\\) at source: .*digest mismatch`));
    expect(existsSync(path.join(vault, 'blobs', 'sha256', layer.slice(7)))).toBe(false);
    expect(existsSync(path.join(vault, 'blobs', 'sha256', fx.plainTar.digest.slice(7)))).toBe(false);
    const list = await cli('--store', `file://${vault}`, '--json', 'list', fx.plainTar.repo);
    expect(JSON.parse(list.stdout).tags).toEqual([]);
  });
});

describe.each(SIZES)('a vault whose blob rotted (%s)', (_label, layerSize) => {
  it('fails the restore naming the blob, and the target never gets the image', async () => {
    // Prepare
    const source = startRegistry(`rot-src-${layerSize}-${Date.now()}`);
    const fx = await pushStandardFixtures(source, tempDir(), { repoPrefix: 'rot', layerSize });
    const vault = tempDir();
    expect((await cli('--store', `file://${vault}`, 'snapshot', fx.plainTar.ref)).code).toBe(0);
    const layer = fx.plainTar.layers[1].digest;
    const file = path.join(vault, 'blobs', 'sha256', layer.slice(7));
    const bytes = readFileSync(file);
    bytes[bytes.length - 600] ^= 0x01;
    writeFileSync(file, bytes);
    const target = startRegistry(`rot-dst-${layerSize}-${Date.now()}`);
    // Act
    const r = await cli(
      '--store',
      `file://${vault}`,
      'restore',
      fx.plainTar.ref,
      '--to',
      `${target}/rot/plain:1`,
    );
    // Assess
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`blob ${layer} is corrupt: digest mismatch`);
    const res = await fetch(`http://${target}/v2/rot/plain/manifests/1`, { method: 'HEAD' });
    expect(res.status).toBe(404);
  });
});

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { pushStandardFixtures } from '../../fixtures';
import { TESTBED_DIR, startRegistry } from '../testbed/env';
import { tempDir } from '../unit/helpers';
import { cli } from './cli-helpers';

describe('a registry serving wrong bytes', () => {
  it('fails the snapshot naming the image and the blob, and stores nothing under that digest', async () => {
    // Prepare: a registry of our own whose stored layer we corrupt behind its back (same size, other bytes)
    const name = `liar-${Date.now()}`;
    const registry = startRegistry(name);
    const fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: 'bad' });
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

import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { copyGraph, CopyError, type CopyEvent } from '../../../lib/copy';
import type { ReadOnlyStorage } from '../../../lib/content';
import { MediaType, type Descriptor } from '../../../lib/oci';
import { descOf, putImage, tempVault } from '../helpers';

describe('Function: copyGraph', () => {
  it('copies every blob and manifest, children before parents, then skips them all on a re-run', async () => {
    // Prepare
    const src = await tempVault();
    const dst = await tempVault();
    const image = await putImage(src, [Buffer.alloc(3000, 1), Buffer.alloc(5000, 2)]);
    const order: string[] = [];
    const onEvent = (e: CopyEvent) => e.type === 'done' && order.push(e.descriptor.digest);
    // Act
    const first = await copyGraph(src, dst, image.manifest, { onEvent });
    const second = await copyGraph(src, dst, image.manifest);
    // Assess
    expect(first.blobs).toEqual({ copied: 3, skipped: 0, mounted: 0 });
    expect(first.manifests.copied).toBe(1);
    expect(order[order.length - 1]).toBe(image.manifest.digest);
    expect(second.blobs).toEqual({ copied: 0, skipped: 3, mounted: 0 });
    expect(second.bytes.copied).toBe(0);
    for (const [digest, data] of image.blobs) {
      const d: Descriptor = { mediaType: 'application/octet-stream', digest, size: data.length };
      expect(await dst.exists(d)).toBe(true);
    }
  });

  it('copies a shared layer once', async () => {
    const src = await tempVault();
    const dst = await tempVault();
    const shared = Buffer.alloc(4096, 7);
    const a = await putImage(src, [shared, Buffer.from('a')]);
    const b = await putImage(src, [shared, Buffer.from('b')]);
    const indexBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [a.manifest, b.manifest],
      }),
    );
    const index = descOf(MediaType.OciIndex, indexBytes);
    await src.push(index, Readable.from([indexBytes]));
    const r = await copyGraph(src, dst, index);
    // config a, config b, shared, a, b: five distinct blobs (the configs differ by their diff_ids)
    expect(r.blobs.copied).toBe(5);
    expect(r.manifests.copied).toBe(3);
  });

  it('copies referrers, and referrers of referrers', async () => {
    const src = await tempVault();
    const dst = await tempVault();
    const image = await putImage(src, [Buffer.from('x')]);
    const sbom = await putImage(src, [Buffer.from('sbom')], {
      artifactType: 'application/spdx+json',
      subject: image.manifest,
    });
    const sig = await putImage(src, [Buffer.from('sig')], {
      artifactType: 'application/vnd.test.sig',
      subject: sbom.manifest,
    });
    const r = await copyGraph(src, dst, image.manifest);
    expect(r.referrers.map((d) => d.digest).sort()).toEqual(
      [sbom.manifest.digest, sig.manifest.digest].sort(),
    );
    expect(await dst.exists(sig.manifest)).toBe(true);
    expect((await dst.referrers(sbom.manifest)).map((d) => d.digest)).toEqual([sig.manifest.digest]);
  });

  it('does not copy referrers when asked not to', async () => {
    const src = await tempVault();
    const dst = await tempVault();
    const image = await putImage(src, [Buffer.from('x')]);
    await putImage(src, [Buffer.from('sig')], {
      artifactType: 'application/vnd.test.sig',
      subject: image.manifest,
    });
    const r = await copyGraph(src, dst, image.manifest, { referrers: false });
    expect(r.referrers).toEqual([]);
  });

  it('blames the source when it serves wrong bytes, names the blob, and stores nothing under that digest', async () => {
    // Prepare: a source that serves other bytes of the same length for one layer
    const src = await tempVault();
    const dst = await tempVault();
    const layer = Buffer.alloc(2048, 3);
    const image = await putImage(src, [layer]);
    const layerDesc = descOf(MediaType.OciLayer, layer);
    const lying: ReadOnlyStorage = {
      exists: (d) => src.exists(d),
      fetch: async (d) =>
        d.digest === layerDesc.digest ? Readable.from([Buffer.alloc(2048, 4)]) : src.fetch(d),
    };
    // Act
    const err = (await copyGraph(lying, dst, image.manifest, { label: 'reg/app:1' }).catch(
      (e: unknown) => e,
    )) as CopyError;
    // Assess: the destination refused the bytes, but they were the source's (a read of the source gone wrong)
    expect(err).toBeInstanceOf(CopyError);
    expect([err.op, err.origin]).toEqual(['fetch', 'source']);
    expect(err.message).toMatch(
      new RegExp(
        `^reg/app:1: fetch ${layerDesc.digest} \\(${MediaType.OciLayer}\\) at source: .*digest mismatch`,
      ),
    );
    expect(await dst.exists(layerDesc)).toBe(false);
    expect(await dst.exists(image.manifest)).toBe(false);
  });

  it('says "at source" when a source body breaks off while the destination reads it', async () => {
    // Prepare: the layer's body fails after its first bytes, as a registry connection reset does
    const src = await tempVault();
    const dst = await tempVault();
    const layer = Buffer.alloc(4096, 6);
    const image = await putImage(src, [layer]);
    const layerDesc = descOf(MediaType.OciLayer, layer);
    const breaking: ReadOnlyStorage = {
      exists: (d) => src.exists(d),
      fetch: async (d) => {
        if (d.digest !== layerDesc.digest) return src.fetch(d);
        const body = new Readable({ read() {} });
        body.push(layer.subarray(0, 1000));
        setTimeout(
          () => body.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })),
          10,
        );
        return body;
      },
    };
    // Act
    const err = (await copyGraph(breaking, dst, image.manifest, { label: 'reg/app:1' }).catch(
      (e: unknown) => e,
    )) as CopyError;
    // Assess
    expect(err).toBeInstanceOf(CopyError);
    expect([err.op, err.origin]).toEqual(['fetch', 'source']);
    expect(err.message).toBe(
      `reg/app:1: fetch ${layerDesc.digest} (${MediaType.OciLayer}) at source: read ECONNRESET`,
    );
    expect(await dst.exists(layerDesc)).toBe(false);
  });

  it('says "at destination" when the destination fails while reading a healthy source', async () => {
    // Prepare: a destination that reads a little, then fails (its disk filled up)
    const src = await tempVault();
    const image = await putImage(src, [Buffer.alloc(64 * 1024, 5)]);
    const failing = await tempVault();
    const push = failing.push.bind(failing);
    failing.push = async (d, content) => {
      if (d.mediaType !== MediaType.OciLayer) return push(d, content);
      // A pipe into a failing file: the pipe destroys the source with the destination's error, which the source
      // then emits too — second, after the destination's own.
      const disk = new Writable({
        write: (_chunk, _enc, done) =>
          done(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })),
      });
      await pipeline(content, disk);
    };
    // Act
    const err = (await copyGraph(src, failing, image.manifest).catch((e: unknown) => e)) as CopyError;
    // Assess
    expect([err.op, err.origin]).toEqual(['push', 'destination']);
    expect(err.message).toMatch(/at destination: ENOSPC/);
  });

  it('fails when a source blob rotted, naming it', async () => {
    const src = await tempVault();
    const dst = await tempVault();
    const layer = Buffer.alloc(1000, 9);
    const image = await putImage(src, [layer]);
    const d = descOf(MediaType.OciLayer, layer);
    writeFileSync(
      path.join(fileURLToPath(src.url), 'blobs/sha256', d.digest.slice(7)),
      Buffer.alloc(1000, 8),
    );
    await expect(copyGraph(src, dst, image.manifest)).rejects.toThrow(`blob ${d.digest} is corrupt`);
    expect(await dst.exists(d)).toBe(false);
  });

  it('dry run pushes nothing but counts what it would copy', async () => {
    const src = await tempVault();
    const dst = await tempVault();
    const image = await putImage(src, [Buffer.alloc(100, 1)]);
    const r = await copyGraph(src, dst, image.manifest, { dryRun: true });
    expect(r.blobs.copied).toBe(2);
    expect(await dst.exists(image.manifest)).toBe(false);
  });

  it('bounds the number of transfers in flight', async () => {
    const src = await tempVault();
    const dst = await tempVault();
    const image = await putImage(
      src,
      Array.from({ length: 12 }, (_, i) => Buffer.alloc(10000, i)),
    );
    let active = 0;
    let peak = 0;
    const slow: ReadOnlyStorage = {
      exists: (d) => src.exists(d),
      fetch: async (d) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 20));
        const s = await src.fetch(d);
        s.once('end', () => active--);
        return s;
      },
    };
    await copyGraph(slow, dst, image.manifest, { concurrency: 3 });
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });
});

describe('Function: copyGraph (resources)', () => {
  it('releases the source stream when the destination fails before reading it', async () => {
    // Prepare: a destination that refuses blobs without reading them
    const src = await tempVault();
    const image = await putImage(src, [Buffer.alloc(4096, 5)]);
    const opened: Readable[] = [];
    const tracking: ReadOnlyStorage = {
      exists: (d) => src.exists(d),
      fetch: async (d) => {
        const s = await src.fetch(d);
        opened.push(s);
        return s;
      },
    };
    const refusing = await tempVault();
    refusing.push = async () => {
      throw new Error('registry said no');
    };
    // Act
    await expect(copyGraph(tracking, refusing, image.manifest)).rejects.toThrow('registry said no');
    await new Promise((r) => setImmediate(r)); // destroy travels up the pipe on the next tick
    // Assess
    expect(opened.length).toBeGreaterThan(0);
    for (const s of opened) expect(s.destroyed).toBe(true);
  });
});

describe('Function: copyGraph, options mount and pushRoot', () => {
  const parts = (bytes: Buffer) =>
    JSON.parse(bytes.toString()) as { config: Descriptor; layers: Descriptor[] };

  it('mounts a blob the destination can mount without asking first whether it is there', async () => {
    // Prepare
    const src = await tempVault();
    const dst = await tempVault();
    const image = await putImage(src, [Buffer.alloc(3000, 1), Buffer.alloc(5000, 2)]);
    const { config } = parts(image.manifestBytes);
    const asked: string[] = [];
    const exists = dst.exists.bind(dst);
    dst.exists = async (d: Descriptor) => {
      asked.push(d.digest);
      return exists(d);
    };
    // Act: every layer "mounts" (stored here by the mount itself); the config does not, so it is asked about and copied
    const summary = await copyGraph(src, dst, image.manifest, {
      mount: async (d) => {
        if (d.digest === config.digest) return false;
        await dst.push(d, Readable.from([image.blobs.get(d.digest)!]));
        return true;
      },
    });
    // Assess
    expect(summary.blobs).toEqual({ copied: 1, skipped: 0, mounted: 2 });
    expect(asked.filter((d) => d !== image.manifest.digest)).toEqual([config.digest]);
  });

  it('hands the root manifest to pushRoot once its graph is there, and counts what it says', async () => {
    const src = await tempVault();
    const image = await putImage(src, [Buffer.from('one'), Buffer.from('two')]);
    const { config, layers } = parts(image.manifestBytes);
    for (const stored of [true, false]) {
      const dst = await tempVault();
      const seen: { digest: string; bytes: Buffer; childrenThere: boolean }[] = [];
      const summary = await copyGraph(src, dst, image.manifest, {
        pushRoot: async (d, bytes) => {
          const there = await Promise.all([config, ...layers].map((c) => dst.exists(c)));
          seen.push({ digest: d.digest, bytes, childrenThere: there.every(Boolean) });
          return stored;
        },
      });
      expect(seen).toEqual([
        { digest: image.manifest.digest, bytes: image.manifestBytes, childrenThere: true },
      ]);
      expect(await dst.exists(image.manifest)).toBe(false);
      expect(summary.manifests).toEqual(stored ? { copied: 1, skipped: 0 } : { copied: 0, skipped: 1 });
    }
  });
});

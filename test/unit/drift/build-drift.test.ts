import { buildDrift, type PushedPlatform } from '../../../lib/drift/build-drift';
import type { ImageConfig } from '../../../lib/drift/diff';
import type { BaseRef } from '../../../lib/drift/types';
import { MediaType, type ImageManifest } from '../../../lib/oci';

const d = (c: string) => `sha256:${c.repeat(64)}`;

function pushed(digest: string, layers: string[], history: string[], base?: BaseRef): PushedPlatform {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: d('c'), size: 2 },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: d(l), size: 10 })),
  };
  const config: ImageConfig = {
    rootfs: { type: 'layers', diff_ids: layers.map((l) => d(l.toUpperCase())) },
    history: history.map((created_by) => ({ created_by })),
  };
  return { digest, manifestDigest: digest, manifest, config, base };
}

const base = (manifestDigest: string, extra: Partial<BaseRef> = {}): BaseRef => ({
  reference: 'registry.test/base/ruby:2.7',
  manifestDigest,
  layers: 2,
  method: 'annotation',
  verified: true,
  historyEntries: 2,
  ...extra,
});

describe('Function: buildDrift', () => {
  const image = { repository: 'app/web', tag: 'prod', platform: 'linux/amd64' };
  const oldHistory = ['ADD rootfs', 'RUN apt-get install openssl=1.1', 'COPY app'];
  const newHistory = ['ADD rootfs', 'RUN apt-get install openssl=3.0', 'COPY app'];

  it('names the base layer position that changed and the history lines, old vs new (the seed incident)', () => {
    // Prepare
    const previous = pushed(d('1'), ['a', 'b', 'e'], oldHistory, base(d('8')));
    const current = pushed(d('2'), ['a', 'f', 'e'], newHistory, base(d('9')));
    // Act
    const drift = buildDrift(image, previous, current);
    // Assess
    expect(drift).toMatchObject({
      kind: 'build-drift',
      repository: 'app/web',
      tag: 'prod',
      platform: 'linux/amd64',
      previous: { digest: d('1'), base: { manifestDigest: d('8') } },
      current: { digest: d('2'), base: { manifestDigest: d('9') } },
      layers: [
        {
          position: 1,
          change: 'changed',
          old: { digest: d('b'), diffId: d('B'), size: 10 },
          new: { digest: d('f'), diffId: d('F'), size: 10 },
        },
      ],
      ownLayers: [],
      history: {
        old: ['ADD rootfs', 'RUN apt-get install openssl=1.1'],
        new: ['ADD rootfs', 'RUN apt-get install openssl=3.0'],
        diff: ['  ADD rootfs', '- RUN apt-get install openssl=1.1', '+ RUN apt-get install openssl=3.0'],
      },
      ownHistory: { diff: ['  COPY app'] },
    });
  });

  it('reports the image’s own layers separately, and a base that grew', () => {
    const previous = pushed(d('1'), ['a', 'b', 'e'], oldHistory, base(d('8')));
    const current = pushed(
      d('2'),
      ['a', 'b', 'g', 'h'],
      ['ADD rootfs', 'RUN apt-get install openssl=1.1', 'RUN patch', 'COPY app v2'],
      base(d('9'), { layers: 3, historyEntries: 3 }),
    );
    const drift = buildDrift(image, previous, current)!;
    expect(drift.layers).toEqual([expect.objectContaining({ position: 2, change: 'changed' })]);
    expect(drift.ownLayers).toEqual([expect.objectContaining({ position: 3, change: 'added' })]);
    expect(drift.history.diff).toEqual(['  ADD rootfs', '  RUN apt-get install openssl=1.1', '+ RUN patch']);
  });

  it('is undefined when the base did not move, or is another base, or is not verified', () => {
    const previous = pushed(d('1'), ['a', 'b', 'e'], oldHistory, base(d('8')));
    expect(
      buildDrift(image, previous, pushed(d('2'), ['a', 'b', 'x'], oldHistory, base(d('8')))),
    ).toBeUndefined();
    expect(
      buildDrift(
        image,
        previous,
        pushed(
          d('2'),
          ['a', 'f', 'e'],
          newHistory,
          base(d('9'), { reference: 'registry.test/base/ruby:3.0' }),
        ),
      ),
    ).toBeUndefined();
    expect(
      buildDrift(
        image,
        previous,
        pushed(d('2'), ['a', 'f', 'e'], newHistory, base(d('9'), { verified: false })),
      ),
    ).toBeUndefined();
    expect(buildDrift(image, previous, pushed(d('2'), ['a', 'f', 'e'], newHistory))).toBeUndefined();
  });
});

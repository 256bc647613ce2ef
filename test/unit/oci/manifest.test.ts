import { Digest, InvalidManifestError, MediaType, parseManifest, successors } from '../../../lib/oci';

const d = (s: string) => Digest.of(Buffer.from(s)).toString();
const desc = (mediaType: string, s: string) => ({ mediaType, digest: d(s), size: s.length });
const bytes = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('Function: parseManifest', () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: desc(MediaType.OciConfig, 'config'),
    layers: [desc(MediaType.OciLayerGzip, 'l1'), desc(MediaType.OciLayer, 'l2')],
  };

  it('parses an OCI image manifest and lists config then layers', () => {
    const node = parseManifest(bytes(manifest), MediaType.OciManifest);
    expect(node.kind).toBe('manifest');
    expect(successors(node).map((x) => x.digest)).toEqual([d('config'), d('l1'), d('l2')]);
  });

  it('puts the subject first among the successors', () => {
    const subject = desc(MediaType.OciManifest, 'subject');
    const node = parseManifest(bytes({ ...manifest, subject }));
    expect(successors(node)[0]).toEqual(subject);
  });

  it('parses a Docker manifest list as an index', () => {
    const list = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifestList,
      manifests: [
        { ...desc(MediaType.DockerManifest, 'a'), platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const node = parseManifest(bytes(list), MediaType.DockerManifestList);
    expect(node.kind).toBe('index');
    expect(successors(node)).toHaveLength(1);
  });

  it('tells index from manifest by shape when mediaType is absent', () => {
    const { mediaType: _m, ...bare } = manifest;
    expect(parseManifest(bytes(bare)).mediaType).toBe(MediaType.OciManifest);
    expect(parseManifest(bytes({ schemaVersion: 2, manifests: [] })).mediaType).toBe(MediaType.OciIndex);
  });

  it('skips non-distributable layers in successors', () => {
    const foreign = { ...desc(MediaType.DockerForeignLayerGzip, 'win'), urls: ['https://example/x'] };
    const node = parseManifest(bytes({ ...manifest, layers: [foreign, ...manifest.layers] }));
    expect(successors(node).map((x) => x.digest)).not.toContain(foreign.digest);
  });

  it('refuses a manifest whose mediaType disagrees with how it was served', () => {
    expect(() => parseManifest(bytes(manifest), MediaType.OciIndex)).toThrow(
      /declares mediaType .* but was served as/,
    );
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), /not valid JSON/],
    ['an array', bytes([]), /not a JSON object/],
    ['schemaVersion 1', bytes({ ...manifest, schemaVersion: 1 }), /schemaVersion/],
    [
      'a bad layer digest',
      bytes({ ...manifest, layers: [{ mediaType: MediaType.OciLayer, digest: 'sha256:zz', size: 1 }] }),
      /layers.0.digest/,
    ],
    ['a negative size', bytes({ ...manifest, config: { ...manifest.config, size: -1 } }), /config.size/],
    [
      'an unknown media type',
      bytes({ ...manifest, mediaType: 'application/x-unknown' }),
      /unsupported manifest media type/,
    ],
  ])('throws InvalidManifestError on %s', (_n, input, message) => {
    expect(() => parseManifest(input)).toThrow(InvalidManifestError);
    expect(() => parseManifest(input)).toThrow(message);
  });
});

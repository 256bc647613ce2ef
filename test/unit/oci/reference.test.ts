import { InvalidReferenceError, Reference } from '../../../lib/oci';

const D = `sha256:${'a'.repeat(64)}`;

describe('Class: Reference', () => {
  it.each([
    ['ruby', 'docker.io', 'library/ruby', undefined, undefined],
    ['ruby:2.7', 'docker.io', 'library/ruby', '2.7', undefined],
    ['bitnami/redis:7', 'docker.io', 'bitnami/redis', '7', undefined],
    ['index.docker.io/library/ruby', 'docker.io', 'library/ruby', undefined, undefined],
    ['localhost:5000/app', 'localhost:5000', 'app', undefined, undefined],
    ['localhost/app:1', 'localhost', 'app', '1', undefined],
    ['127.0.0.1:5000/team/app:1.0', '127.0.0.1:5000', 'team/app', '1.0', undefined],
    [`ghcr.io/org/app@${D}`, 'ghcr.io', 'org/app', undefined, D],
    [`ghcr.io/org/app:v1@${D}`, 'ghcr.io', 'org/app', 'v1', D],
    [
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:prod',
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      'app',
      'prod',
      undefined,
    ],
    ['[::1]:5000/app', '[::1]:5000', 'app', undefined, undefined],
  ])('parses %s', (input, registry, repository, tag, digest) => {
    const r = Reference.parse(input);
    expect([r.registry, r.repository, r.tag, r.digest]).toEqual([registry, repository, tag, digest]);
  });

  it('prints the normalised form that parses back to itself', () => {
    const r = Reference.parse('ruby:2.7');
    expect(r.toString()).toBe('docker.io/library/ruby:2.7');
    expect(Reference.parse(r.toString()).toString()).toBe(r.toString());
  });

  it('prefers the digest as the API reference', () => {
    expect(Reference.parse(`ghcr.io/a/b:v1@${D}`).reference).toBe(D);
    expect(Reference.parse('ghcr.io/a/b:v1').reference).toBe('v1');
  });

  it.each([
    ['upper-case repository', 'ghcr.io/Org/app'],
    ['empty', ''],
    ['bad tag', 'app:-bad'],
    ['tag too long', `app:${'t'.repeat(129)}`],
    ['bad digest', 'app@sha256:1234'],
    ['double slash', 'ghcr.io//app'],
    ['leading separator', 'ghcr.io/-app'],
    ['spaces', ' app'],
  ])('throws on %s', (_n, input) => {
    expect(() => Reference.parse(input)).toThrow(InvalidReferenceError);
  });

  it('names the input in the error', () => {
    expect(() => Reference.parse('ghcr.io/Org/app')).toThrow(/"ghcr.io\/Org\/app"/);
  });
});

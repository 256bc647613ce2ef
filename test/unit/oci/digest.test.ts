import { createHash } from 'node:crypto';
import { Digest, Digester, DigestMismatchError, InvalidDigestError, verifyBytes } from '../../../lib/oci';

describe('Class: Digest', () => {
  const hex = createHash('sha256').update('hello').digest('hex');

  it('parses sha256 and prints back the same string', () => {
    const d = Digest.parse(`sha256:${hex}`);
    expect(d.algorithm).toBe('sha256');
    expect(d.toString()).toBe(`sha256:${hex}`);
  });

  it('parses sha512', () => {
    const h = createHash('sha512').update('x').digest('hex');
    expect(Digest.parse(`sha512:${h}`).hex).toBe(h);
  });

  it.each([
    ['no algorithm', hex, /expected algorithm:hex/],
    ['short hex', 'sha256:abc', /64 lowercase hex/],
    ['upper case', `sha256:${hex.toUpperCase()}`, /lowercase hex/],
    ['sha512 length on sha256', `sha256:${'a'.repeat(128)}`, /64/],
    ['unknown algorithm', `md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    ['blake3', `blake3:${'a'.repeat(64)}`, /only sha256 and sha512/],
    ['path traversal', 'sha256:../../etc/passwd', /invalid digest/],
  ])('throws on %s', (_name, value, message) => {
    expect(() => Digest.parse(value)).toThrow(InvalidDigestError);
    expect(() => Digest.parse(value)).toThrow(message);
  });
});

describe('Function: verifyBytes', () => {
  const data = Buffer.from('content');
  const good = Digest.of(data).toString();

  it('accepts content that hashes to the digest', () => {
    expect(() => verifyBytes(data, good, data.length)).not.toThrow();
  });

  it('throws DigestMismatchError naming both digests', () => {
    const other = Digest.of(Buffer.from('other')).toString();
    expect(() => verifyBytes(data, other)).toThrow(DigestMismatchError);
    expect(() => verifyBytes(data, other)).toThrow(`expected ${other}, content hashes to ${good}`);
  });

  it('throws on a size mismatch even when the digest matches', () => {
    expect(() => verifyBytes(data, good, data.length + 1)).toThrow(/size mismatch/);
  });

  it('verifies sha512 digests with sha512', () => {
    const d512 = Digest.of(data, 'sha512').toString();
    expect(() => verifyBytes(data, d512)).not.toThrow();
  });
});

describe('Class: Digester', () => {
  it('hashes chunks incrementally to the same digest as the whole', () => {
    const h = new Digester();
    h.update(Buffer.from('hel'));
    h.update(Buffer.from('lo'));
    expect(h.digest().toString()).toBe(Digest.of(Buffer.from('hello')).toString());
    expect(h.bytes).toBe(5);
  });
});

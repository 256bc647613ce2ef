import { createHash, type Hash } from 'node:crypto';
import { DigestMismatchError, InvalidDigestError } from './errors';

/** The algorithms we can verify. Anything else is refused rather than stored unverified. */
const ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type Algorithm = keyof typeof ALGORITHMS;

const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/**
 * A content digest, `algorithm:encoded`, checked at parse time so that anything holding a Digest
 * can use it as a file name or object key without further escaping.
 */
export class Digest {
  private constructor(
    readonly algorithm: Algorithm,
    readonly hex: string,
  ) {}

  static parse(value: string): Digest {
    const m = DIGEST_RE.exec(value);
    if (!m) throw new InvalidDigestError(`invalid digest "${value}": expected algorithm:hex`);
    const [, alg, hex] = m;
    if (!(alg in ALGORITHMS)) {
      throw new InvalidDigestError(
        `unsupported digest algorithm "${alg}" in "${value}": only sha256 and sha512 are verified`,
      );
    }
    const want = ALGORITHMS[alg as Algorithm];
    if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) {
      throw new InvalidDigestError(
        `invalid ${alg} digest "${value}": expected ${want} lowercase hex characters`,
      );
    }
    return new Digest(alg as Algorithm, hex);
  }

  static isValid(value: string): boolean {
    try {
      Digest.parse(value);
      return true;
    } catch {
      return false;
    }
  }

  static of(data: Uint8Array, algorithm: Algorithm = 'sha256'): Digest {
    return new Digest(algorithm, createHash(algorithm).update(data).digest('hex'));
  }

  toString(): string {
    return `${this.algorithm}:${this.hex}`;
  }

  equals(other: Digest | string): boolean {
    return this.toString() === other.toString();
  }
}

/** Incremental hashing of a stream of chunks, in the algorithm of the expected digest. */
export class Digester {
  private readonly hash: Hash;
  private size = 0;

  constructor(readonly algorithm: Algorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  get bytes(): number {
    return this.size;
  }

  digest(): Digest {
    return Digest.parse(`${this.algorithm}:${this.hash.digest('hex')}`);
  }
}

/** Throws DigestMismatchError unless `data` is exactly the content `expected` and `size` name. */
export function verifyBytes(data: Uint8Array, expected: string, size?: number, context = ''): void {
  const want = Digest.parse(expected);
  const got = Digest.of(data, want.algorithm);
  const wantSize = size ?? data.length;
  if (!got.equals(want) || data.length !== wantSize) {
    throw new DigestMismatchError(want.toString(), got.toString(), wantSize, data.length, context);
  }
}

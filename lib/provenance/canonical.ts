import { createHash } from 'node:crypto';

/**
 * Canonical JSON, the bytes the provenance log hashes: object keys sorted by UTF-16 code unit order (JavaScript's
 * default sort, which equals code point order for the ASCII keys we write), no whitespace, strings and numbers as
 * `JSON.stringify` writes them, `undefined` object members dropped (as JSON.stringify drops them). Arrays keep their
 * order. Only JSON values are accepted: a non-finite number, a function or a bigint is refused rather than hashed as
 * something it is not. This is the subset of RFC 8785 (JCS) our records need; they contain no floats.
 */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value))
        return `[${value.map((v) => (v === undefined ? 'null' : canonicalize(v))).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: a ${typeof value} is not a JSON value`);
  }
}

/** The canonical JSON of `value` as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

/** Lowercase hex sha256 of the canonical JSON of `value`. */
export function canonicalHash(value: unknown): string {
  return createHash('sha256').update(canonicalBytes(value)).digest('hex');
}

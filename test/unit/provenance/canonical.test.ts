import { canonicalHash, canonicalize } from '../../../lib/provenance';

describe('Function: canonicalize', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalize({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}',
    );
  });

  it('gives the same bytes for the same value however its keys were ordered', () => {
    expect(canonicalHash({ a: 1, b: [1, 2] })).toBe(canonicalHash({ b: [1, 2], a: 1 }));
    expect(canonicalHash({ a: 1, b: [1, 2] })).not.toBe(canonicalHash({ a: 1, b: [2, 1] }));
  });

  it('drops undefined members as JSON.stringify does, and escapes strings as JSON', () => {
    expect(canonicalize({ a: undefined, b: 'quote " and \n' })).toBe('{"b":"quote \\" and \\n"}');
  });

  it('refuses values that are not JSON', () => {
    expect(() => canonicalize({ n: Number.NaN })).toThrow(/not a JSON number/);
    expect(() => canonicalize({ f: () => 1 })).toThrow(/function is not a JSON value/);
  });
});

import {
  commonPrefix,
  diffLayers,
  diffLines,
  historyEntriesFor,
  isStrictPrefix,
  parseImageConfig,
  type LayerInfo,
} from '../../../lib/drift/diff';

const layer = (id: string): LayerInfo => ({ digest: `blob-${id}`, diffId: id, size: id.length });

describe('Module: drift/diff', () => {
  describe('Function: isStrictPrefix', () => {
    it('accepts a base whose diff_ids start the image and leave at least one layer of its own', () => {
      expect(isStrictPrefix(['a', 'b'], ['a', 'b', 'c'])).toBe(true);
    });
    it('refuses the same layers (an image is not its own base)', () => {
      expect(isStrictPrefix(['a', 'b'], ['a', 'b'])).toBe(false);
    });
    it('refuses a different layer at any position', () => {
      expect(isStrictPrefix(['a', 'x'], ['a', 'b', 'c'])).toBe(false);
    });
    it('refuses an empty base and a longer base', () => {
      expect(isStrictPrefix([], ['a'])).toBe(false);
      expect(isStrictPrefix(['a', 'b', 'c'], ['a', 'b'])).toBe(false);
    });
  });

  describe('Function: commonPrefix', () => {
    it('counts the leading shared entries', () => {
      expect(commonPrefix(['a', 'b', 'c'], ['a', 'b', 'd', 'e'])).toBe(2);
      expect(commonPrefix(['x'], ['a'])).toBe(0);
      expect(commonPrefix([], [])).toBe(0);
    });
  });

  describe('Function: diffLayers', () => {
    it('names changed, added and removed positions (0-based) and skips equal ones', () => {
      const old = [layer('a'), layer('b'), layer('c')];
      const now = [layer('a'), layer('B'), layer('c'), layer('d')];
      expect(diffLayers(old, now)).toEqual([
        { position: 1, old: layer('b'), new: layer('B'), change: 'changed' },
        { position: 3, new: layer('d'), change: 'added' },
      ]);
      expect(diffLayers(now, old, 2)).toEqual([{ position: 3, old: layer('d'), change: 'removed' }]);
    });
    it('compares by diff_id: the same content recompressed is no change', () => {
      expect(diffLayers([{ ...layer('a'), digest: 'gz1' }], [{ ...layer('a'), digest: 'gz2' }])).toEqual([]);
    });
    it('limits the comparison to [from, to)', () => {
      expect(diffLayers([layer('a'), layer('b')], [layer('x'), layer('y')], 0, 1)).toHaveLength(1);
    });
  });

  describe('Function: diffLines', () => {
    it('shows the seed incident as one line out, one line in', () => {
      expect(
        diffLines(
          ['ADD rootfs', 'RUN apt-get install openssl=1.1', 'CMD ["irb"]'],
          ['ADD rootfs', 'RUN apt-get install openssl=3.0', 'CMD ["irb"]'],
        ),
      ).toEqual([
        '  ADD rootfs',
        '- RUN apt-get install openssl=1.1',
        '+ RUN apt-get install openssl=3.0',
        '  CMD ["irb"]',
      ]);
    });
    it('handles insertions, deletions and empty sides', () => {
      expect(diffLines(['a', 'c'], ['a', 'b', 'c'])).toEqual(['  a', '+ b', '  c']);
      expect(diffLines(['a', 'b'], [])).toEqual(['- a', '- b']);
      expect(diffLines([], ['a'])).toEqual(['+ a']);
    });
  });

  describe('Function: historyEntriesFor', () => {
    const history = [
      { created_by: 'ADD rootfs' },
      { created_by: 'ENV A=1', empty_layer: true },
      { created_by: 'RUN apt-get' },
      { created_by: 'CMD x', empty_layer: true },
      { created_by: 'COPY app' },
    ];
    it('ends after the base’s last layer-creating entry', () => {
      expect(historyEntriesFor(history, 1)).toBe(1);
      expect(historyEntriesFor(history, 2)).toBe(3);
      expect(historyEntriesFor(history, 0)).toBe(0);
      expect(historyEntriesFor(history, 9)).toBe(5);
    });
  });

  describe('Function: parseImageConfig', () => {
    it('throws when diff_ids is not a list of strings', () => {
      expect(() => parseImageConfig(Buffer.from('{"rootfs":{"diff_ids":[1]}}'))).toThrow(/diff_ids/);
      expect(() => parseImageConfig(Buffer.from('[]'))).toThrow(/not a JSON object/);
    });
  });
});

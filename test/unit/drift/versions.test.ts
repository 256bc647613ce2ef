import {
  compareNumbers,
  describeNewer,
  globToRegExp,
  newerVersions,
  parseVersionTag,
} from '../../../lib/drift/versions';

describe('Function: parseVersionTag', () => {
  it.each([
    ['2.7', [2, 7], undefined, '', '', []],
    ['2.7.8', [2, 7, 8], undefined, '', '', []],
    ['3.3-slim', [3, 3], undefined, 'slim', 'slim', []],
    ['3.3.6-bookworm', [3, 3, 6], undefined, 'bookworm', 'bookworm', []],
    ['3.3.6-slim-bookworm', [3, 3, 6], undefined, 'slim-bookworm', 'slim-bookworm', []],
    ['v1.2.3', [1, 2, 3], undefined, '', '', []],
    ['20-alpine3.20', [20], undefined, 'alpine3.20', 'alpine', [[3, 20]]],
    ['3.4.0-rc1', [3, 4, 0], 'rc1', '', '', []],
    ['3.13.0rc1-slim', [3, 13, 0], 'rc1', 'slim', 'slim', []],
    ['3.13.0a1', [3, 13, 0], 'a1', '', '', []],
    ['1.0.0-beta.2', [1, 0, 0], 'beta.2', '', '', []],
    ['17-ea-jdk', [17], 'ea', 'jdk', 'jdk', []],
    [
      '8-windowsservercore-ltsc2022',
      [8],
      undefined,
      'windowsservercore-ltsc2022',
      'windowsservercore-ltsc',
      [[2022]],
    ],
    ['22.04', [22, 4], undefined, '', '', []],
  ])('reads %s', (tag, numbers, pre, variant, family, variantVersion) => {
    // Act
    const v = parseVersionTag(tag);

    // Assess
    expect(v).toEqual({
      tag,
      numbers,
      release: expect.any(String),
      ...(pre ? { pre } : {}),
      variant,
      family,
      variantVersion,
    });
  });

  it('keeps the numbers as written for printing', () => {
    expect(parseVersionTag('22.04')?.release).toBe('22.04');
    expect(parseVersionTag('v1.2.3')?.release).toBe('1.2.3');
  });

  it.each([
    'latest',
    'edge',
    'lts',
    'bookworm',
    'slim',
    '1.2.3.4',
    '2.7foo',
    '2.7-',
    '2.7--slim',
    'v',
    '2.7_x',
    'sha256-abc',
  ])('reads %s as no version', (tag) => {
    expect(parseVersionTag(tag)).toBeUndefined();
  });

  it.each(['20240115', '2024.01.15', '2024-01-15', '202401'])(
    'reads the date %s as no version by default',
    (tag) => {
      expect(parseVersionTag(tag)).toBeUndefined();
    },
  );

  it('reads dates as versions when asked, a dashed date as one number triple', () => {
    expect(parseVersionTag('2024-01-15', { dates: true })).toMatchObject({
      numbers: [2024, 1, 15],
      variant: '',
    });
    expect(parseVersionTag('20240115', { dates: true })).toMatchObject({ numbers: [20240115] });
  });
});

describe('Function: compareNumbers', () => {
  it('orders numerically, a prefix first', () => {
    const sorted = [[3, 3, 6], [2, 10], [3], [2, 9, 1], [3, 3]].sort(compareNumbers);
    expect(sorted).toEqual([[2, 9, 1], [2, 10], [3], [3, 3], [3, 3, 6]]);
  });
});

describe('Function: globToRegExp', () => {
  it('matches whole tags with * and ?, everything else literal', () => {
    expect(globToRegExp('*-windowsservercore*').test('3.3-windowsservercore-ltsc2022')).toBe(true);
    expect(globToRegExp('3.?').test('3.4')).toBe(true);
    expect(globToRegExp('3.?').test('3.45')).toBe(false);
    expect(globToRegExp('3.4').test('3x4')).toBe(false);
  });
});

const RUBY = [
  'latest',
  'slim',
  'bookworm',
  'edge',
  '2',
  '2.7',
  '2.7.6',
  '2.7.7',
  '2.7.8',
  '2.7-slim',
  '2.7.8-slim',
  '2.7.6-slim',
  '3',
  '3.2',
  '3.2.4',
  '3.3',
  '3.3.5',
  '3.3.6',
  '3.3-slim',
  '3.3.6-slim',
  '3.3.6-bookworm',
  '3.3-bookworm',
  '3.4.0-rc1',
  '3.4.0-rc1-slim',
  '3.4-rc',
  '20240115',
];

describe('Function: newerVersions', () => {
  it('reports patch, minor and major beyond a release, in that order, and the brief line', () => {
    // Act
    const found = newerVersions('2.7.6', RUBY);

    // Assess: no 2.8 exists, so no minor; the major is the newest release, with its line at our precision
    expect(found.newer).toEqual([
      { kind: 'patch', tag: '2.7.8', version: '2.7.8' },
      { kind: 'major', tag: '3.3.6', version: '3.3.6' },
    ]);
    expect(describeNewer(found.newer)).toBe('newer: 2.7.8 (patch), 3.3.6 (major)');
  });

  it('reports no patch for a moving minor line, but says where the line stands', () => {
    // Act
    const found = newerVersions('2.7', RUBY);

    // Assess
    expect(found.current).toBe('2.7.8');
    expect(found.newer).toEqual([{ kind: 'major', tag: '3.3.6', version: '3.3.6', line: '3.3' }]);
  });

  it('reports a minor within the major in use, with the line tag at the precision in use', () => {
    expect(newerVersions('3.2', RUBY).newer).toEqual([
      { kind: 'minor', tag: '3.3.6', version: '3.3.6', line: '3.3' },
    ]);
    expect(newerVersions('3.2.4', RUBY).newer).toEqual([{ kind: 'minor', tag: '3.3.6', version: '3.3.6' }]);
  });

  it('reports only majors for a moving major line', () => {
    expect(newerVersions('2', RUBY)).toMatchObject({
      current: '2.7.8',
      newer: [{ kind: 'major', tag: '3.3.6', line: '3' }],
    });
    expect(newerVersions('3', RUBY).newer).toEqual([]);
  });

  it('keeps the variant: 2.7-slim compares only with *-slim', () => {
    // Act
    const slim = newerVersions('2.7.6-slim', RUBY);
    const bookworm = newerVersions('3.3-bookworm', RUBY);

    // Assess
    expect(slim.newer).toEqual([
      { kind: 'patch', tag: '2.7.8-slim', version: '2.7.8' },
      { kind: 'major', tag: '3.3.6-slim', version: '3.3.6' },
    ]);
    expect(newerVersions('2.7-slim', RUBY).newer).toEqual([
      { kind: 'major', tag: '3.3.6-slim', version: '3.3.6', line: '3.3-slim' },
    ]);
    expect(bookworm.current).toBe('3.3.6');
    expect(bookworm.newer).toEqual([]);
  });

  it('ignores pre-releases by default, and counts them when asked or when one is in use', () => {
    expect(newerVersions('3.3.6', RUBY).newer).toEqual([]);
    expect(newerVersions('3.3.6', RUBY, { prereleases: true }).newer).toEqual([
      { kind: 'minor', tag: '3.4.0-rc1', version: '3.4.0-rc1' },
    ]);
    expect(newerVersions('3.4.0-rc1', [...RUBY, '3.4.0-rc2', '3.4.0']).newer).toEqual([
      { kind: 'patch', tag: '3.4.0', version: '3.4.0' },
    ]);
    expect(newerVersions('3.4.0-rc1', [...RUBY, '3.4.0-rc2']).newer).toEqual([
      { kind: 'patch', tag: '3.4.0-rc2', version: '3.4.0-rc2' },
    ]);
  });

  it('compares v-prefixed tags with plain ones', () => {
    expect(newerVersions('v1.2.3', ['v1.2.3', 'v1.2.4', '1.3.0', 'v2.0.0']).newer).toEqual([
      { kind: 'patch', tag: 'v1.2.4', version: '1.2.4' },
      { kind: 'minor', tag: '1.3.0', version: '1.3.0' },
      { kind: 'major', tag: 'v2.0.0', version: '2.0.0' },
    ]);
  });

  it('ignores dates unless asked, and then compares them', () => {
    const tags = ['1.0', '20240115', '20250101'];
    expect(newerVersions('1.0', tags).newer).toEqual([]);
    expect(newerVersions('20240115', tags).newer).toEqual([]);
    expect(newerVersions('20240115', tags, { dates: true }).newer).toEqual([
      { kind: 'major', tag: '20250101', version: '20250101' },
    ]);
  });

  it('leaves out tags matching an ignore glob', () => {
    expect(newerVersions('2.7.6', RUBY, { ignore: ['3', '3.*'] }).newer).toEqual([
      { kind: 'patch', tag: '2.7.8', version: '2.7.8' },
    ]);
  });

  it('compares nothing for a tag that is no version', () => {
    expect(newerVersions('latest', RUBY)).toEqual({ tag: 'latest', newer: [] });
    expect(newerVersions('edge', RUBY).newer).toEqual([]);
  });

  describe('a variant carrying its own version (20-alpine3.20)', () => {
    const NODE = [
      '20-alpine3.19',
      '20-alpine3.20',
      '20-alpine3.21',
      '20.18.0-alpine3.20',
      '20.18.1-alpine3.20',
      '20.18.1-alpine3.21',
      '22-alpine3.20',
      '22.11.0-alpine3.20',
      '24-alpine3.21',
      '24.1.0-alpine3.21',
      '24.1.0-alpine3.22',
      '20',
      '24',
    ];

    it('compares across variant versions, naming our variant version when upstream has it, else the newest', () => {
      // Act
      const found = newerVersions('20.18.0-alpine3.20', NODE);

      // Assess: 20.18.1 exists on alpine3.20 (ours) and 3.21: ours is named; 24.1.0 only on 3.21 and 3.22
      expect(found.newer).toEqual([
        { kind: 'patch', tag: '20.18.1-alpine3.20', version: '20.18.1' },
        { kind: 'major', tag: '24.1.0-alpine3.22', version: '24.1.0' },
      ]);
    });

    it('reports the line on a newer variant version: a frozen tag', () => {
      // Act
      const found = newerVersions('20-alpine3.20', NODE);

      // Assess
      expect(found.current).toBe('20.18.1');
      expect(found.newer).toEqual([
        { kind: 'major', tag: '24.1.0-alpine3.22', version: '24.1.0', line: '24-alpine3.21' },
        { kind: 'variant', tag: '20-alpine3.21', version: '20' },
      ]);
      expect(describeNewer(found.newer)).toBe(
        'newer: 24.1.0-alpine3.22 (major, tag 24-alpine3.21), 20-alpine3.21 (variant)',
      );
    });

    it('never compares with another family', () => {
      expect(newerVersions('20', NODE).newer).toEqual([{ kind: 'major', tag: '24', version: '24' }]);
    });
  });
});

describe('Function: describeNewer', () => {
  it('is empty when nothing is newer', () => {
    expect(describeNewer([])).toBe('');
  });
});

import { ruleFor, settingsFor, versionRulesProblems } from '../../../lib/drift/version-rules';

describe('Function: ruleFor', () => {
  it('takes the longest matching repository prefix', () => {
    const rules = { '': { intervalHours: 24 }, 'team-a/': { intervalHours: 6 } };
    expect(ruleFor(rules, 'team-a/api')).toEqual({ intervalHours: 6 });
    expect(ruleFor(rules, 'app')).toEqual({ intervalHours: 24 });
    expect(ruleFor({ 'team-a/': {} }, 'app')).toBeUndefined();
  });
});

describe('Function: settingsFor', () => {
  it('watches every upstream with the defaults', () => {
    expect(settingsFor({ '': {} }, 'docker.io/library/ruby', ['app'])).toEqual({
      ignore: [],
      intervalHours: 24,
      prereleases: false,
      dates: false,
    });
  });

  it('watches only the upstreams a rule names, by glob', () => {
    const rules = { '': { upstreams: ['docker.io/library/*'] } };
    expect(settingsFor(rules, 'docker.io/library/ruby', ['app'])).toBeDefined();
    expect(settingsFor(rules, 'registry.example.com/base/node', ['app'])).toBeUndefined();
    expect(settingsFor({ '': { upstreams: [] } }, 'docker.io/library/ruby', ['app'])).toBeUndefined();
  });

  it('merges teams so that nobody misses what they asked for', () => {
    // Prepare
    const rules = {
      'team-a/': { ignore: ['3.*', '*-rc*'], intervalHours: 12 },
      'team-b/': { ignore: ['3.*'], intervalHours: 48, prereleases: true },
      'team-c/': { upstreams: [] },
    };

    // Act
    const merged = settingsFor(rules, 'docker.io/library/ruby', ['team-a/x', 'team-b/y', 'team-c/z']);

    // Assess
    expect(merged).toEqual({ ignore: ['3.*'], intervalHours: 12, prereleases: true, dates: false });
  });
});

describe('Function: versionRulesProblems', () => {
  it('accepts a valid value', () => {
    expect(
      versionRulesProblems('newerVersions', {
        '': { upstreams: ['docker.io/library/*'], ignore: ['*-windowsservercore*'], intervalHours: 6 },
        'team-a/': { prereleases: true, dates: false },
      }),
    ).toEqual([]);
  });

  it('names every problem at once, with the entry', () => {
    expect(
      versionRulesProblems('newerVersions', {
        '': { upstream: ['x'], intervalHours: 0.5, prereleases: 'yes' },
        'team-a/': { ignore: 'x' },
        'team-b/': [],
      }),
    ).toEqual([
      'newerVersions[""] has an unknown key "upstream" (known: upstreams, ignore, intervalHours, prereleases, dates)',
      'newerVersions[""].intervalHours must be a whole number of hours of at least 1, got 0.5',
      'newerVersions[""].prereleases must be true or false, got "yes"',
      'newerVersions["team-a/"].ignore must be a list of non-empty glob strings, got "x"',
      'newerVersions["team-b/"] must be an object, got []',
    ]);
    expect(versionRulesProblems('NEWER_VERSIONS', [])).toEqual([
      'NEWER_VERSIONS must be an object of repository prefix → { upstreams, ignore, intervalHours, prereleases, dates }, got []',
    ]);
  });
});

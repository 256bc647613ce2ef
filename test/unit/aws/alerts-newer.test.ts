import type { NewerVersionsResult } from '../../../lib/drift/newer-versions';
import {
  MAX_MESSAGE_BYTES,
  MAX_SUBJECT_LENGTH,
  formatAlert,
  publishedBytes,
  newerVersionsAlertOf,
} from '../../../lib/alerts';

const STORE = 's3://imagevault-vault-123456789012/prod';
const result = (reference: string, over: Partial<NewerVersionsResult> = {}): NewerVersionsResult => ({
  reference,
  status: 'checked',
  newer: [],
  platforms: ['linux/amd64'],
  repositories: ['app'],
  listedAt: '2026-03-09T06:00:00.000Z',
  tags: 100,
  ...over,
});
const offered = (missing: string[] = []) => ({
  digest: `sha256:${'a'.repeat(64)}`,
  offered: ['linux/amd64'],
  missing,
  checkedAt: '2026-03-09T06:00:00.000Z',
});

describe('Function: newerVersionsAlertOf', () => {
  it('keeps only bases with newer versions, the most behind first, and counts them', () => {
    // Act
    const alert = newerVersionsAlertOf(
      [
        result('docker.io/library/alpine:3.19', { newer: [] }),
        result('docker.io/library/python:3.12.1', {
          newer: [{ kind: 'patch', tag: '3.12.4', version: '3.12.4', platforms: offered() }],
        }),
        result('docker.io/library/ruby:2.7', {
          current: '2.7.8',
          repositories: ['app', 'team-a/api'],
          platforms: ['linux/arm64'],
          newer: [
            {
              kind: 'major',
              tag: '3.3.6',
              version: '3.3.6',
              line: '3.3',
              platforms: offered(['linux/arm64']),
            },
          ],
        }),
      ],
      { checkedAt: '2026-03-09T06:00:00.000Z', since: '2026-03-02T06:00:00.000Z', store: STORE },
    );

    // Assess
    expect(alert.bases.map((b) => b.reference)).toEqual([
      'docker.io/library/ruby:2.7',
      'docker.io/library/python:3.12.1',
    ]);
    expect(alert.summary).toEqual({
      bases: 2,
      major: 1,
      minor: 0,
      patch: 1,
      variant: 0,
      lackingPlatforms: 1,
    });
    const f = formatAlert(alert);
    expect(f.subject).toBe('[imagevault] newer base versions: 2 base tags behind (1 major, 1 patch)');
    expect(f.attributes).toEqual({ kind: 'newer-versions', repository: '*', severity: 'warning' });
    expect(f.message.split('\n--- alert as JSON')[0]).toBe(
      [
        '2 base tags in use have a newer version upstream (1 major, 1 patch); for 1, the newest release lacks a platform our images use.',
        'A base that never moves still ages: a newer line gets the fixes.',
        '',
        'docker.io/library/ruby:2.7 (now 2.7.8), used by app, team-a/api',
        '  newer: 3.3.6 (major, tag 3.3); 3.3.6 lacks linux/arm64',
        'docker.io/library/python:3.12.1, used by app',
        '  newer: 3.12.4 (patch)',
        '',
        'Checked at:    2026-03-09T06:00:00.000Z',
        'Last digest:   2026-03-02T06:00:00.000Z',
        `Vault:         ${STORE}`,
        '',
        'Next steps: move FROM to the newer tag in each Dockerfile, rebuild and test; a tag you do not want is silenced',
        'with an ignore pattern (newerVersions in the stack configuration).',
        '',
      ].join('\n'),
    );
  });

  it('keeps a digest of 10,000 bases within SNS limits, saying how many more and where to see them', () => {
    // Prepare: long names, every kind, and a long reason
    const results = Array.from({ length: 10_000 }, (_, i) =>
      result(`registry.example.com/${'team-é/'.repeat(20)}base-${i}:2.7-${'v'.repeat(100)}`, {
        repositories: Array.from({ length: 60 }, (_, j) => `team-${j}/${'r'.repeat(200)}`),
        newer: [
          { kind: 'patch', tag: '2.7.8', version: '2.7.8', platformsUnknown: 'x'.repeat(10_000) },
          {
            kind: 'minor',
            tag: '2.9.1',
            version: '2.9.1',
            platforms: offered(['linux/arm64', 'linux/s390x']),
          },
          { kind: 'major', tag: '3.3.6', version: '3.3.6', line: '3.3', platforms: offered() },
          { kind: 'variant', tag: '2.7-alpine3.21', version: '2.7', platforms: offered() },
        ],
      }),
    );

    // Act
    const f = formatAlert(
      newerVersionsAlertOf(results, { checkedAt: '2026-03-09T06:00:00.000Z', store: STORE }),
    );

    // Assess
    expect(publishedBytes(f)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(f.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    expect(f.subject).toBe(
      '[imagevault] newer base versions: 10000 base tags behind (10000 major, 10000 minor, 10000 patch)',
    );
    expect(f.message).toMatch(
      /\.\.\. and 9,9\d\d more base tags, not listed here; all of them: imagevault drift check --store s3:/,
    );
    const json = JSON.parse(f.message.split('--- alert as JSON (for machines) ---\n')[1]) as {
      summary: { bases: number };
      omitted: Record<string, number>;
    };
    expect(json.summary.bases).toBe(10_000);
    expect(json.omitted.bases).toBeGreaterThan(9_900);
  });
});

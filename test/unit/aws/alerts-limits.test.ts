import {
  MAX_MESSAGE_BYTES,
  MAX_SUBJECT_LENGTH,
  formatAlert,
  publishedBytes,
  type Alert,
  type FormattedAlert,
} from '../../../lib/alerts';

/*
 * Every alert kind at 10,000 of whatever it can list (gaps, affected images, platforms, layers, history lines) or,
 * for the kinds about one image, with 10,000-line texts and the longest names ECR allows: each must still be one
 * publishable SNS message.
 */

const N = 10_000;
const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const STORE = 's3://imagevault-vault-123456789012/prod';
const hex = (i: number) => i.toString(16).padStart(64, '0');
const digest = (i: number) => `sha256:${hex(i)}`;
// ECR's longest repository name (256) and tag (128); é is two bytes in UTF-8, so bytes ≠ characters.
const REPO = `team-é/${'r'.repeat(248)}`;
const TAG = 't'.repeat(128);
const image = (i: number) => ({
  registry: REGISTRY,
  repository: `${REPO.slice(0, 240)}-${i}`,
  tag: TAG,
  digest: digest(i),
});
const many = <T>(f: (i: number) => T, n = N): T[] => Array.from({ length: n }, (_, i) => f(i));
const lines = many((i) => `+ /bin/sh -c echo line ${i} é ${'x'.repeat(80)}`).join('\n');
const layer = (i: number) => ({
  position: i,
  change: 'changed' as const,
  old: { digest: digest(i), diffId: digest(i + 1), size: 1000 },
  new: { digest: digest(i + 2), diffId: digest(i + 3), size: 2000 },
});

const TAGS = many((t) => `tag-${t}`, 100);
const LAYERS = many(layer, 50);

const alerts: Alert[] = [
  {
    kind: 'reconcile-gap',
    gaps: many((i) => ({
      image: image(i),
      pushedAt: '2026-02-27T09:00:00.000Z',
      vault: { digest: digest(i + N), observedAt: '2026-02-01T00:00:00.000Z' },
    })),
    reconciledAt: '2026-03-01T06:00:00.000Z',
    store: STORE,
  },
  {
    kind: 'upstream-moved',
    reference: 'docker.io/library/ruby:2.7',
    oldDigest: digest(1),
    newDigest: digest(2),
    platforms: many((i) => ({
      platform: `linux/arch${i}`,
      oldManifest: digest(i),
      newManifest: digest(i + 1),
    })),
    affected: many((i) => ({
      repository: image(i).repository,
      digest: digest(i),
      tags: TAGS,
      platforms: ['linux/amd64', 'linux/arm64'],
    })),
    diff: many((i) => ({ platform: `linux/arch${i}`, layers: LAYERS, history: ['- a', '+ b'] })),
    detectedAt: '2026-03-03T06:00:00.000Z',
    registry: REGISTRY,
    store: STORE,
  },
  {
    kind: 'build-drift',
    image: image(1),
    previous: { digest: digest(2), pushedAt: '2026-03-01T10:00:00.000Z' },
    base: {
      reference: 'docker.io/library/ruby:2.7',
      platform: 'linux/amd64',
      oldDigest: digest(3),
      newDigest: digest(4),
    },
    layers: many(layer),
    history: lines.split('\n'),
    detectedAt: '2026-03-02T09:00:00.000Z',
    store: STORE,
  },
  {
    kind: 'snapshot-failed',
    image: image(1),
    reason: lines,
    attempts: 3,
    event: { id: 'e', origin: 'ecr-event', time: '2026-03-01T10:00:00Z' },
    store: STORE,
  },
  {
    kind: 'event-unreadable',
    messageId: 'm',
    reason: lines,
    attempts: 3,
    excerpt: lines,
    store: STORE,
  },
  {
    kind: 'image-deleted',
    image: image(1),
    deletedAt: '2026-03-02T08:15:00Z',
    event: { id: lines, origin: 'ecr-event' },
    lastSnapshot: { digest: digest(1), snapshottedAt: '2026-03-01T10:00:05.123Z' },
    store: STORE,
  },
  {
    kind: 'registry-drift',
    image: { ...image(1), tag: lines },
    change: 'deleted',
    detectedAt: '2026-03-04T00:00:00.000Z',
    store: STORE,
  },
  {
    kind: 'in-use-deleted',
    image: image(1),
    tags: TAGS.concat(many((i) => `${TAG.slice(0, 100)}-${i}`)),
    detectedBy: { origin: 'ecr-event', id: lines },
    deletedAt: '2026-03-05T00:00:00.000Z',
    runningIn: many((i) => ({
      where: `kubernetes:prod-é/${'n'.repeat(200)}/Deployment/app-${i}`,
      instances: many((p) => `app-${i}-pod-${p}-${'x'.repeat(40)}`, 10),
      lastSeen: '2026-03-05T00:00:00.000Z',
    })),
    lastSnapshot: { digest: digest(1), snapshottedAt: '2026-03-01T10:00:05.123Z' },
    restore: {
      status: 'restored',
      digest: digest(1),
      tags: many((i) => ({ name: `tag-${i}`, restored: false, reason: lines })),
    },
    store: STORE,
  },
];

/** SNS's limits on what is published: https://docs.aws.amazon.com/sns/latest/api/API_Publish.html */
function expectWithinSnsLimits(f: FormattedAlert): void {
  expect(f.subject.length).toBeLessThan(100);
  expect(f.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
  expect(f.subject).toMatch(/^[\x20-\x7e]+$/);
  const attributes = Object.entries(f.attributes).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength('String') + Buffer.byteLength(v),
    0,
  );
  expect(Buffer.byteLength(f.message, 'utf8') + attributes).toBeLessThanOrEqual(256 * 1024);
  expect(publishedBytes(f)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  expect(f.message).not.toMatch(/[\uD800-\uDFFF]/); // no half surrogate pair: it would not encode
}

describe('Function: formatAlert (SNS limits)', () => {
  it.each(alerts.map((a) => [a.kind, a] as const))(
    'keeps a %s alert of 10,000 within SNS limits',
    (_kind, alert) => {
      // Act
      const f = formatAlert(alert);

      // Assess
      expectWithinSnsLimits(f);
      const json = JSON.parse(f.message.split('--- alert as JSON (for machines) ---\n')[1]) as Record<
        string,
        unknown
      >;
      expect(json.kind).toBe(alert.kind);
    },
  );

  it('lists the first gaps, counts the rest, and says where every gap is', () => {
    // Act
    const f = formatAlert(alerts[0]);

    // Assess
    expect(f.subject).toBe('[imagevault] reconcile found 10000 GAPS in 10000 repositories');
    expect(f.message).toContain('Reconcile found 10000 tags in ECR');
    expect(f.message).toContain('... and 9,950 more gaps, not listed here;');
    expect(f.message).toContain(
      'filter message = "reconcile gap" and reconciledAt = "2026-03-01T06:00:00.000Z"',
    );
    const json = JSON.parse(f.message.split('--- alert as JSON (for machines) ---\n')[1]) as {
      gaps: unknown[];
      omitted: Record<string, number>;
    };
    expect(json.gaps).toHaveLength(50);
    expect(json.omitted).toEqual({ gaps: 9950 });
  });

  it('names the command that lists every affected image of an upstream move', () => {
    const f = formatAlert(alerts[1]);
    expect(f.message).toContain(
      'The upstream base docker.io/library/ruby:2.7 now points at other content than 10000 images',
    );
    expect(f.message).toContain(
      `more images, not listed here; list them all: imagevault drift check --reference docker.io/library/ruby:2.7 --store ${STORE}`,
    );
  });

  it('lists the first places a deleted image runs, counts the rest, and says how to list them all', () => {
    // Act
    const f = formatAlert(alerts[alerts.length - 1]);

    // Assess: critical, still naming the restore, and cut where it had to be
    expect(f.attributes.severity).toBe('critical');
    expect(f.subject).toMatch(
      /^\[imagevault\] IN USE image DELETED, restored: \.\.\.t+ \(sha256:0{12}\.\.\.\)$/,
    );
    expect(f.message).toMatch(/more workloads, not listed here; all of them: imagevault inventory --store /);
    expect(f.message).toContain(`reports the same digest: ${digest(1)}.`);
  });

  it('cuts a long reason and says by how much', () => {
    const f = formatAlert(alerts[3]);
    expect(f.message).toMatch(/\.\.\. \(\d+ more characters\)/);
  });
});

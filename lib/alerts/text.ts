import type { LayerChange } from '../drift/diff';
import type {
  Alert,
  AlertImage,
  BuildDriftAlert,
  EventUnreadableAlert,
  ImageDeletedAlert,
  ReconcileGapAlert,
  RegistryDriftAlert,
  Severity,
  SnapshotFailedAlert,
  UpstreamMovedAlert,
} from './alert';
import { restoreCommand } from './commands';
import { inUseDeletedText } from './in-use-deleted-alert';
import { newerVersionsText } from './newer-versions-alert';

/*
 * The text of an alert: a subject and a mail a person reads, then the alert as JSON for machines, within the limits
 * of the SNS topic it is published to (lib/aws/sns-alerts.ts). Plain text only: no client, no I/O.
 */

export interface FormattedAlert {
  /** ASCII, one line, under 100 characters (SNS's limits for e-mail subjects). */
  readonly subject: string;
  /** Text for a person, then the alert as JSON. */
  readonly message: string;
  readonly attributes: { readonly kind: string; readonly repository: string; readonly severity: Severity };
}

/** SNS rejects a Subject of 100 characters or more. */
export const MAX_SUBJECT_LENGTH = 99;
const PREFIX = '[imagevault]';
const JSON_MARKER = '--- alert as JSON (for machines) ---';

/**
 * SNS's limit on a published message: 256 KiB, counting the message's UTF-8 bytes and its message attributes'
 * names, types and values. The subject is counted here too, to stay on the safe side of what SNS counts.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * How much of an alert is spelled out. Beyond `listed` entries a list (gaps, affected images, layers, history lines)
 * is cut, and the text says how many more there are and how to list them all; a text field longer than `chars`
 * (a failure's reason) is cut too. 50 gap entries are ~50 KB of text and JSON, so an alert is a readable mail and
 * far below the limit; formatAlert halves both when an alert still does not fit.
 */
export interface AlertLimits {
  readonly listed: number;
  readonly chars: number;
}

export const DEFAULT_ALERT_LIMITS: AlertLimits = { listed: 50, chars: 4000 };

/** How many entries were cut from each list, by path (`gaps`, `affected.tags`, `diff.layers`). */
type Omitted = ReadonlyMap<string, number>;

/**
 * The subject, text and attributes SNS gets for an alert, within SNS's limits whatever the number of images it is
 * about: the subject under 100 ASCII characters, the message with its attributes at most MAX_MESSAGE_BYTES.
 */
export function formatAlert(alert: Alert, limits: AlertLimits = DEFAULT_ALERT_LIMITS): FormattedAlert {
  for (let l = limits; ;) {
    const omitted = new Map<string, number>();
    const bounded = bound(alert, l, omitted, '') as Alert;
    const f = formatBounded(bounded, alert, omitted);
    // Both bounds end small (one entry, 100 characters), where every kind is a few KB: the loop ends.
    if (publishedBytes(f) <= MAX_MESSAGE_BYTES || (l.listed <= 1 && l.chars <= 100)) return f;
    l = { listed: Math.max(1, Math.floor(l.listed / 2)), chars: Math.max(100, Math.floor(l.chars / 2)) };
  }
}

/** What SNS counts against MAX_MESSAGE_BYTES for a formatted alert (with the subject, to be safe). */
export function publishedBytes(f: FormattedAlert): number {
  let n = Buffer.byteLength(f.message, 'utf8') + Buffer.byteLength(f.subject, 'utf8');
  for (const [name, value] of Object.entries(f.attributes))
    n += Buffer.byteLength(name) + Buffer.byteLength('String') + Buffer.byteLength(value, 'utf8');
  return n;
}

/** A copy with every list cut to `listed` entries and every string to `chars`, counting what was cut. */
function bound(value: unknown, limits: AlertLimits, omitted: Map<string, number>, path: string): unknown {
  if (typeof value === 'string') {
    if (value.length <= limits.chars) return value;
    // Never end on half a surrogate pair: it would not encode as UTF-8.
    const cut = value.slice(0, limits.chars).replace(/[\uD800-\uDBFF]$/, '');
    return `${cut}... (${value.length - cut.length} more characters)`;
  }
  if (Array.isArray(value)) {
    if (value.length > limits.listed)
      omitted.set(path, (omitted.get(path) ?? 0) + value.length - limits.listed);
    return value.slice(0, limits.listed).map((v) => bound(v, limits, omitted, path));
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = k === 'kind' ? v : bound(v, limits, omitted, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

/** `  ... and 9,950 more gaps, not listed here: <how>` when a list was cut, else nothing. */
function moreLines(omitted: Omitted, path: string, what: string, how: string): string[] {
  const n = omitted.get(path);
  return n ? [`  ... and ${n.toLocaleString('en-US')} more ${what}, not listed here; ${how}`] : [];
}

/** The alert formatted from its bounded copy; `full` gives the true counts. */
function formatBounded(alert: Alert, full: Alert, omitted: Omitted): FormattedAlert {
  switch (alert.kind) {
    case 'snapshot-failed':
      return formatSnapshotFailed(alert, omitted);
    case 'event-unreadable':
      return formatEventUnreadable(alert, omitted);
    case 'image-deleted':
      return formatImageDeleted(alert, omitted);
    case 'reconcile-gap':
      return formatReconcileGap(alert, full as ReconcileGapAlert, omitted);
    case 'upstream-moved':
      return formatUpstreamMoved(alert, full as UpstreamMovedAlert, omitted);
    case 'build-drift':
      return formatBuildDrift(alert, omitted);
    case 'registry-drift':
      return formatRegistryDrift(alert, omitted);
    case 'newer-versions': {
      // The weekly digest's text lives with its shape (./newer-versions-alert); the limits are applied here.
      const t = newerVersionsText(alert, omitted);
      return {
        subject: fit(t.subject),
        message: withJson(t.lines, alert, omitted),
        attributes: { kind: alert.kind, repository: t.repository, severity: 'warning' },
      };
    }
    case 'in-use-deleted': {
      // Its text lives with its shape (./in-use-deleted-alert), as the weekly digest's does.
      const t = inUseDeletedText(alert, omitted);
      return {
        subject: fit(t.subject),
        message: withJson(t.lines, alert, omitted),
        attributes: { kind: alert.kind, repository: alert.image.repository, severity: t.severity },
      };
    }
  }
}

/** The command that shows an image's bases and what changed in them. */
function baseCommand(img: AlertImage, store: string): string {
  return `imagevault base ${img.repository}@${img.digest} --store ${store}`;
}

/** `sha256:abcd1234`: enough of a digest for a subject line. */
function shortDigest(digest: string, hex: number): string {
  return digest.slice(0, digest.indexOf(':') + 1 + hex);
}

function layerLines(changes: readonly LayerChange[]): string[] {
  if (changes.length === 0) return ['  (no layer differs)'];
  return changes.map((c) => {
    const o = c.old ? `${c.old.diffId || c.old.digest} (${c.old.size} bytes)` : '-';
    const n = c.new ? `${c.new.diffId || c.new.digest} (${c.new.size} bytes)` : '-';
    return `  layer ${c.position} ${c.change}: ${o} -> ${n}`;
  });
}

function historyLines(lines: readonly string[]): string[] {
  return lines.length === 0 ? ['  (no history recorded)'] : lines.map((l) => `  ${l}`);
}

/** `FROM ruby:2.7@sha256:…`, the tag kept for readers and the digest for the build. */
function pinnedFrom(reference: string, digest: string): string {
  const short = reference.replace(/^docker\.io\/(library\/)?/, '');
  return `FROM ${short}@${digest}`;
}

function formatUpstreamMoved(
  a: UpstreamMovedAlert,
  full: UpstreamMovedAlert,
  omitted: Omitted,
): FormattedAlert {
  const repositories = [...new Set(full.affected.map((i) => i.repository))].sort();
  const registry = a.registry ?? '<registry>';
  const listAll = `list them all: imagevault drift check --reference ${a.reference} --store ${a.store}`;
  const text = [
    `The upstream base ${a.reference} now points at other content than ${plural(full.affected.length, 'image', 'images')} in the vault ${full.affected.length === 1 ? 'was' : 'were'} built on.`,
    'The next build FROM this tag gets the new content.',
    '',
    field('Upstream', a.reference),
    field('Was', a.oldDigest),
    field('Now', a.newDigest),
    field('Detected at', a.detectedAt),
    field('Vault', a.store),
    '',
    'Platforms that changed:',
    ...a.platforms.map(
      (p) =>
        `  ${p.platform}: ${p.oldManifest} -> ${p.newManifest ?? 'REMOVED (the tag no longer offers it)'}`,
    ),
    ...moreLines(omitted, 'platforms', 'platforms', listAll),
    '',
    'Images built on the old content:',
    ...a.affected.map(
      (i) =>
        `  ${i.repository}@${i.digest}${i.tags.length > 0 ? ` (tags: ${i.tags.join(', ')})` : ' (no current tag)'} [${i.platforms.join(', ')}]`,
    ),
    ...moreLines(omitted, 'affected', 'images', listAll),
    ...moreLines(omitted, 'affected.tags', 'tags of these images', listAll),
    '',
  ];
  if (a.diff && a.diff.length > 0) {
    for (const d of a.diff) {
      text.push(`What changed on ${d.platform}, layers:`, ...layerLines(d.layers));
      text.push(`History (created_by), old vs new:`, ...historyLines(d.history), '');
    }
    const compare = `compare them all: imagevault base ${a.reference}`;
    const cut = [
      ...moreLines(omitted, 'diff', 'platforms', compare),
      ...moreLines(omitted, 'diff.layers', 'layer changes', compare),
      ...moreLines(omitted, 'diff.history', 'history lines', compare),
    ];
    if (cut.length > 0) text.push(...cut, '');
  } else {
    text.push('What changed: layer and history diff not available (compare with `imagevault base REF`).', '');
  }
  text.push(
    'Next steps, one of:',
    '  - rebuild the images on the new base, test them, and deploy as usual;',
    `  - pin the base you tested, in each Dockerfile: ${pinnedFrom(a.reference, a.oldDigest)}`,
    '  - if a rebuild on the new base already broke something, restore the last good image:',
  );
  for (const i of a.affected) {
    const tag = i.tags[0];
    text.push(`  ${restoreCommand(i.repository, i.digest, registry, tag, a.store)}`);
  }
  text.push(...moreLines(omitted, 'affected', 'images', listAll));
  const head = `${PREFIX} upstream moved: `;
  // 8 hex digits each: the reference is what a reader needs whole (99 characters leave it 32).
  const digests = ` (${shortDigest(a.oldDigest, 8)} -> ${shortDigest(a.newDigest, 8)})`;
  const room = MAX_SUBJECT_LENGTH - head.length - digests.length;
  const name =
    a.reference.length <= room ? a.reference : `...${a.reference.slice(a.reference.length - room + 3)}`;
  return {
    subject: fit(`${head}${name}${digests}`),
    message: withJson(text, a, omitted),
    attributes: {
      kind: a.kind,
      repository: repositories.length === 1 ? repositories[0] : '*',
      severity: 'warning',
    },
  };
}

function formatBuildDrift(a: BuildDriftAlert, omitted: Omitted): FormattedAlert {
  const img = a.image;
  const text = [
    `A new push of ${shortName(img)} was built on ${a.base.reference}, like the previous push, but on different base content.`,
    'The same Dockerfile now produces a different image: check it before it reaches production.',
    '',
    field('Image', fullName(img)),
    field('Digest', img.digest),
    field('Previous push', `${a.previous.digest}, pushed ${a.previous.pushedAt}`),
    field('Base', `${a.base.reference} (${a.base.platform})`),
    field('Base was', a.base.oldDigest),
    field('Base now', a.base.newDigest),
    field('Detected at', a.detectedAt),
    field('Vault', a.store),
    '',
    'Layers that changed:',
    ...layerLines(a.layers),
    ...moreLines(omitted, 'layers', 'layer changes', `see them all: ${baseCommand(img, a.store)}`),
    '',
    'History (created_by), old vs new:',
    ...historyLines(a.history),
    ...moreLines(omitted, 'history', 'history lines', `see them all: ${baseCommand(img, a.store)}`),
    '',
    'Next steps, one of:',
    '  - if the new base is intended: test the image as usual, nothing else to do;',
    `  - to build on the base the previous push used, pin it: ${pinnedFrom(a.base.reference, a.base.oldDigest)}`,
    '  - to put the previous image back now:',
    `  ${restoreCommand(img.repository, a.previous.digest, img.registry, img.tag, a.store)}`,
  ];
  return {
    subject: subject('build DRIFT:', img),
    message: withJson(text, a, omitted),
    attributes: { kind: a.kind, repository: img.repository, severity: 'warning' },
  };
}

function formatRegistryDrift(a: RegistryDriftAlert, omitted: Omitted): FormattedAlert {
  const img = a.image;
  const last = a.lastSnapshot;
  const text = [
    a.change === 'retagged'
      ? `A tag in ECR points at a digest the vault has no push record for: it was moved outside the normal push path.`
      : `An image the vault knows is gone from ECR.`,
    '',
    field('Image', fullName(img)),
    field(a.change === 'retagged' ? 'In ECR now' : 'Was', img.digest),
    field('Detected at', a.detectedAt),
    field(
      'Last snapshot',
      last
        ? `${last.digest}, snapshotted ${last.snapshottedAt}`
        : 'NONE - the vault cannot restore this image',
    ),
    field('Vault', a.store),
    '',
  ];
  if (last) {
    text.push(
      'Next step: find out who changed it (CloudTrail: PutImage / BatchDeleteImage). If it was not intended,',
      'restore the last snapshot:',
      `  ${restoreCommand(img.repository, last.digest, img.registry, img.tag, a.store)}`,
    );
  } else {
    text.push('Next step: rebuild the image or find another copy; the vault never snapshotted it.');
  }
  return {
    subject: subject(
      a.change === 'retagged' ? 'registry DRIFT, tag moved:' : 'registry DRIFT, deleted:',
      img,
    ),
    message: withJson(text, a, omitted),
    attributes: { kind: a.kind, repository: img.repository, severity: last ? 'warning' : 'critical' },
  };
}

function formatSnapshotFailed(a: SnapshotFailedAlert, omitted: Omitted): FormattedAlert {
  const img = a.image;
  const text = [
    `imagevault could not snapshot an image, ${plural(a.attempts, 'attempt', 'attempts')} in a row. It is NOT protected until a snapshot succeeds.`,
    '',
    field('Image', `${fullName(img)}`),
    field('Digest', img.digest),
    field('Asked by', `${describeOrigin(a.event.origin)} ${a.event.id} at ${a.event.time}`),
    field('Reason', a.reason),
    field('Vault', a.store),
    '',
    "What happens now: the message moves to the snapshot queue's dead-letter queue, and the next reconcile run",
    'enqueues the image again if it is still missing from the vault.',
    '',
    'Next step: fix the cause above, then either redrive the dead-letter queue (SQS console: "Start DLQ redrive")',
    'or snapshot the image by hand:',
    `  aws ecr get-login-password --region ${regionOf(img.registry)} | docker login --username AWS --password-stdin ${img.registry}`,
    `  imagevault snapshot ${img.registry}/${img.repository}@${img.digest} --store ${a.store}`,
  ];
  return {
    subject: subject('snapshot FAILED:', img),
    message: withJson(text, a, omitted),
    attributes: { kind: a.kind, repository: img.repository, severity: 'critical' },
  };
}

function formatEventUnreadable(a: EventUnreadableAlert, omitted: Omitted): FormattedAlert {
  const text = [
    `imagevault received an event it could not read, ${plural(a.attempts, 'attempt', 'attempts')} in a row. Whatever image it was about is NOT being snapshotted from it.`,
    '',
    field('Message', a.messageId),
    field('Reason', a.reason),
    field('Received', a.excerpt),
    field('Vault', a.store),
    '',
    "What happens now: the message moves to the snapshot queue's dead-letter queue; the next reconcile run",
    'enqueues any image still missing from the vault.',
    '',
    'Next step: find what sends this to the queue (an EventBridge rule or a hand-made message) and fix it;',
    'the message itself is in the dead-letter queue.',
  ];
  return {
    subject: `${PREFIX} unreadable event on the snapshot queue`,
    message: withJson(text, a, omitted),
    attributes: { kind: a.kind, repository: '-', severity: 'critical' },
  };
}

function formatImageDeleted(a: ImageDeletedAlert, omitted: Omitted): FormattedAlert {
  const img = a.image;
  const last = a.lastSnapshot;
  const text = [
    `An image was deleted from ECR. Nothing was removed from the vault; the delete is recorded in its history.`,
    '',
    field('Image', fullName(img)),
    field('Digest', img.digest),
    field('Deleted at', `${a.deletedAt} (${describeOrigin(a.event.origin)} ${a.event.id})`),
    field(
      'Last snapshot',
      last ? `${last.digest}, snapshotted ${last.snapshottedAt}` : 'NONE - this image was never snapshotted',
    ),
    field('Vault', a.store),
    '',
  ];
  if (last) {
    text.push(
      'Next step: if the delete was a mistake, restore the last snapshot into ECR:',
      `  ${restoreCommand(img.repository, last.digest, img.registry, img.tag, a.store)}`,
      '(the same command with the replica bucket works from the replica region)',
    );
  } else {
    text.push(
      'Next step: the vault cannot restore this image. If it is still needed, rebuild it or find another copy;',
      "then check why it was never snapshotted (the snapshot queue's dead-letter queue, earlier alerts).",
    );
  }
  return {
    subject: subject('image DELETED in ECR:', img),
    message: withJson(text, a, omitted),
    attributes: { kind: a.kind, repository: img.repository, severity: last ? 'warning' : 'critical' },
  };
}

function formatReconcileGap(a: ReconcileGapAlert, full: ReconcileGapAlert, omitted: Omitted): FormattedAlert {
  const repositories = [...new Set(full.gaps.map((g) => g.image.repository))].sort();
  const total = full.gaps.length;
  const listAll = `every gap is in the reconcile function's log: CloudWatch Logs Insights, fields repository, tag, digest | filter message = "reconcile gap" and reconciledAt = "${a.reconciledAt}"`;
  const text = [
    total === 1
      ? "Reconcile found a tag in ECR that the vault's history does not record: a push event was missed, or the tag was moved without one."
      : `Reconcile found ${total} tags in ECR that the vault's history does not record: push events were missed, or tags were moved without one.`,
    '',
  ];
  for (const g of a.gaps) {
    text.push(
      field('Image', fullName(g.image)),
      field('In ECR now', `${g.image.digest}${g.pushedAt ? ` (image pushed ${g.pushedAt})` : ''}`),
      field(
        'Vault says',
        g.vault ? `${g.vault.digest}, observed ${g.vault.observedAt}` : 'no record of this tag',
      ),
      '',
    );
  }
  const more = moreLines(omitted, 'gaps', 'gaps', listAll);
  if (more.length > 0) text.push(...more, '');
  text.push(
    field('Reconciled at', a.reconciledAt),
    field('Vault', a.store),
    '',
    'What happens now: each image has been queued for a snapshot, and the history will record each tag at its',
    'current digest.',
    '',
    'Next step: find out who moved the tag (CloudTrail: PutImage in the repository around the push time). If the',
    'move was not intended, restore what the vault recorded before:',
  );
  const restorable = a.gaps.filter((g) => g.vault);
  for (const g of restorable) {
    text.push(
      `  ${restoreCommand(g.image.repository, g.vault!.digest, g.image.registry, g.image.tag, a.store)}`,
    );
  }
  if (restorable.length === 0)
    text.push('  (nothing to restore: the vault had no earlier record of these tags)');
  text.push(...moreLines(omitted, 'gaps', 'gaps', listAll));
  const only = total === 1 ? a.gaps[0] : undefined;
  return {
    subject: only
      ? subject('reconcile GAP:', only.image)
      : fit(
          `${PREFIX} reconcile found ${total} GAPS in ${plural(repositories.length, 'repository', 'repositories')}`,
        ),
    message: withJson(text, a, omitted),
    attributes: {
      kind: a.kind,
      repository: repositories.length === 1 ? repositories[0] : '*',
      severity: 'warning',
    },
  };
}

/** `[imagevault] <what> <repo:tag> (sha256:1234567890ab...)`, the name shortened to fit in the subject. */
function subject(what: string, img: AlertImage): string {
  const digest = ` (${img.digest.slice(0, img.digest.indexOf(':') + 13)}...)`;
  const head = `${PREFIX} ${what} `;
  const name = shortName(img);
  const room = MAX_SUBJECT_LENGTH - head.length - digest.length;
  const fitted = name.length <= room ? name : `...${name.slice(name.length - room + 3)}`;
  return fit(`${head}${fitted}${digest}`);
}

/** SNS subjects: ASCII, no line breaks, under 100 characters. */
function fit(s: string): string {
  const ascii = s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return ascii.length <= MAX_SUBJECT_LENGTH ? ascii : `${ascii.slice(0, MAX_SUBJECT_LENGTH - 3)}...`;
}

function shortName(img: AlertImage): string {
  return img.tag ? `${img.repository}:${img.tag}` : `${img.repository}@untagged`;
}

function fullName(img: AlertImage): string {
  return `${img.registry}/${img.repository}${img.tag ? `:${img.tag}` : ' (untagged)'}`;
}

function field(name: string, value: string): string {
  return `${`${name}:`.padEnd(15)}${value}`;
}

function describeOrigin(origin: string): string {
  switch (origin) {
    case 'reconcile':
      return 'reconcile event';
    case 'pull-through-cache':
      return 'ECR pull-through cache event';
    case 'replication':
      return 'ECR replication event';
    default:
      return 'ECR event';
  }
}

function regionOf(registry: string): string {
  return /\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com/.exec(registry)?.[1] ?? '<region>';
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The text, then the (bounded) alert as JSON. `omitted` there says how many entries each cut list had beyond those
 * given (by path: `gaps`, `affected.tags`), so a machine knows the list is not whole.
 */
function withJson(lines: string[], alert: Alert, omitted: Omitted): string {
  const cut = omitted.size > 0 ? { omitted: Object.fromEntries(omitted) } : {};
  return `${lines.join('\n')}\n\n${JSON_MARKER}\n${JSON.stringify({ version: 1, ...alert, ...cut }, null, 2)}\n`;
}

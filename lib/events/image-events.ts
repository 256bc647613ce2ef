import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { Digest, validateRepository, validateTag } from '../oci';

/*
 * The messages on the snapshot queue. ECR sends one "ECR Image Action" event per manifest pushed or deleted
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html); EventBridge puts the event, as is,
 * in the SQS message body. Reconcile enqueues the same shape with `source: imagevault.reconcile`, so the snapshot
 * function has one input format and a reconcile message can be replayed by hand like any ECR event.
 *
 * Images can also arrive in a repository without a push: a pull-through cache rule fetches them from upstream on
 * the first pull ("ECR Pull Through Cache Action"), and registry replication copies them in from another region or
 * account ("ECR Replication Action"). Neither sends an Image Action, so both are parsed here into the same
 * ImageEvent as a push: otherwise such images would wait for the reconcile and be alerted as gaps.
 */

export const ECR_EVENT_SOURCE = 'aws.ecr';
export const RECONCILE_EVENT_SOURCE = 'imagevault.reconcile';
export const IMAGE_ACTION_DETAIL_TYPE = 'ECR Image Action';
export const PULL_THROUGH_CACHE_DETAIL_TYPE = 'ECR Pull Through Cache Action';
export const REPLICATION_DETAIL_TYPE = 'ECR Replication Action';

/** Base error of this module. */
export class EventError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventError';
  }
}

/** Thrown for a message that is not an ECR image event (or a reconcile one); the message lists what is wrong. */
export class InvalidEventError extends EventError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidEventError';
  }
}

const digestString = z.string().refine((d) => Digest.isValid(d), { message: 'not a valid digest' });
const repositoryName = z.string().refine((r) => valid(() => validateRepository(r)), {
  message: 'not a valid repository name',
});
/** ECR leaves `image-tag` out of untagged pushes; treat an empty one the same. */
const imageTag = z
  .string()
  .optional()
  .transform((t) => (t === '' ? undefined : t))
  .refine((t) => t === undefined || valid(() => validateTag(t)), { message: 'not a valid tag' });

/** `detail` of an ECR Image Action event. Unknown fields (ECR adds some, e.g. manifest-media-type) are kept. */
export const ImageActionDetailSchema = z.looseObject({
  result: z.string(),
  'repository-name': repositoryName,
  'image-digest': digestString,
  'action-type': z.enum(['PUSH', 'DELETE']),
  'image-tag': imageTag,
});

/** The EventBridge envelope, as ECR sends it and as reconcile writes it. */
export const ImageActionEventSchema = z.looseObject({
  version: z.string(),
  id: z.string().min(1),
  'detail-type': z.literal(IMAGE_ACTION_DETAIL_TYPE),
  source: z.enum([ECR_EVENT_SOURCE, RECONCILE_EVENT_SOURCE]),
  account: z.string().regex(/^\d{12}$/, 'not a 12-digit AWS account id'),
  time: z.iso.datetime({ offset: true }),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'not an AWS region'),
  resources: z.array(z.string()),
  detail: ImageActionDetailSchema,
});
export type ImageActionEvent = z.input<typeof ImageActionEventSchema>;

/** The envelope fields every ECR event shares. */
const ecrEnvelope = {
  version: z.string(),
  id: z.string().min(1),
  source: z.literal(ECR_EVENT_SOURCE),
  account: z.string().regex(/^\d{12}$/, 'not a 12-digit AWS account id'),
  time: z.iso.datetime({ offset: true }),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'not an AWS region'),
  resources: z.array(z.string()),
};

/**
 * A pull-through cache sync: `sync-status` SUCCESS or FAILED, the repository it created or refreshed, the image's
 * digest and the tag pulled (a pull by digest has none).
 */
export const PullThroughCacheEventSchema = z.looseObject({
  ...ecrEnvelope,
  'detail-type': z.literal(PULL_THROUGH_CACHE_DETAIL_TYPE),
  detail: z.looseObject({
    'sync-status': z.string(),
    'repository-name': repositoryName,
    'image-digest': digestString,
    'image-tag': imageTag,
    'upstream-registry-url': z.string().optional(),
  }),
});

/** A replication into this registry: `result` SUCCESS or FAILED, with the source account and region. */
export const ReplicationEventSchema = z.looseObject({
  ...ecrEnvelope,
  'detail-type': z.literal(REPLICATION_DETAIL_TYPE),
  detail: z.looseObject({
    result: z.string(),
    'action-type': z.string().optional(),
    'repository-name': repositoryName,
    'image-digest': digestString,
    'image-tag': imageTag,
    'source-account': z.string().optional(),
    'source-region': z.string().optional(),
  }),
});

/** An image event, checked and in our own words. */
export interface ImageEvent {
  /** The EventBridge event id (reconcile: a fresh UUID); the history's `source.id`. */
  readonly id: string;
  /** What sent it: a push or delete, a pull-through cache sync, a replication into this registry, or reconcile. */
  readonly origin: 'ecr-event' | 'pull-through-cache' | 'replication' | 'reconcile';
  readonly account: string;
  readonly region: string;
  /** ISO time of the push or delete (reconcile: when it looked). */
  readonly time: string;
  readonly action: 'PUSH' | 'DELETE';
  /** `SUCCESS`, or whatever else ECR says; only successful actions are acted on. */
  readonly result: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag?: string;
}

/** Parses an SQS message body (JSON text) or an already parsed object; throws InvalidEventError. */
export function parseImageEvent(body: unknown): ImageEvent {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch (e) {
      throw new InvalidEventError(`not an ECR image event: the message body is not JSON (${excerpt(body)})`, {
        cause: e,
      });
    }
  }
  const type = (value as { 'detail-type'?: unknown } | null)?.['detail-type'];
  if (type === PULL_THROUGH_CACHE_DETAIL_TYPE) {
    const e = check(PullThroughCacheEventSchema, value);
    return arrival(e, 'pull-through-cache', e.detail['sync-status']);
  }
  if (type === REPLICATION_DETAIL_TYPE) {
    const e = check(ReplicationEventSchema, value);
    return arrival(e, 'replication', e.detail.result);
  }
  const e = check(ImageActionEventSchema, value);
  return {
    id: e.id,
    origin: e.source === ECR_EVENT_SOURCE ? 'ecr-event' : 'reconcile',
    account: e.account,
    region: e.region,
    time: e.time,
    action: e.detail['action-type'],
    result: e.detail.result,
    repository: e.detail['repository-name'],
    digest: e.detail['image-digest'],
    ...(e.detail['image-tag'] !== undefined && { tag: e.detail['image-tag'] }),
  };
}

function check<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new InvalidEventError(
    `not an ECR image event (source ${ECR_EVENT_SOURCE} or ${RECONCILE_EVENT_SOURCE}, detail-type "${IMAGE_ACTION_DETAIL_TYPE}", "${PULL_THROUGH_CACHE_DETAIL_TYPE}" or "${REPLICATION_DETAIL_TYPE}"): ${problemsOf(parsed.error)}`,
    { cause: parsed.error },
  );
}

/** Every problem zod found, `path: message`, separated by `; `. */
function problemsOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`).join('; ');
}

/** An image that arrived without a push (cache sync, replication): snapshotted like a push of it. */
function arrival(
  e: z.output<typeof PullThroughCacheEventSchema> | z.output<typeof ReplicationEventSchema>,
  origin: 'pull-through-cache' | 'replication',
  result: string,
): ImageEvent {
  return {
    id: e.id,
    origin,
    account: e.account,
    region: e.region,
    time: e.time,
    action: 'PUSH',
    result,
    repository: e.detail['repository-name'],
    digest: e.detail['image-digest'],
    ...(e.detail['image-tag'] !== undefined && { tag: e.detail['image-tag'] }),
  };
}

/**
 * The event reconcile enqueues: an ECR push event's shape, `source: imagevault.reconcile`, a fresh id. A DELETE is
 * a running digest gone from ECR without an event, for the snapshot function's deletion guard.
 */
export function reconcileEvent(init: {
  account: string;
  region: string;
  repository: string;
  digest: string;
  tag?: string;
  time: Date | string;
  id?: string;
  /** @default 'PUSH' */
  action?: 'PUSH' | 'DELETE';
}): ImageActionEvent {
  return {
    version: '0',
    id: init.id ?? randomUUID(),
    'detail-type': IMAGE_ACTION_DETAIL_TYPE,
    source: RECONCILE_EVENT_SOURCE,
    account: init.account,
    time: typeof init.time === 'string' ? init.time : init.time.toISOString(),
    region: init.region,
    resources: [],
    detail: {
      result: 'SUCCESS',
      'repository-name': init.repository,
      'image-digest': init.digest,
      'action-type': init.action ?? 'PUSH',
      ...(init.tag !== undefined && { 'image-tag': init.tag }),
    },
  };
}

/**
 * Which repositories are protected: all (`*`), or those whose name starts with one of a list of prefixes. A prefix
 * matches as a plain string prefix: `team-a/` covers `team-a/api` but not `team-ab`; `team-a` covers both.
 */
export class RepositoryFilter {
  private constructor(readonly prefixes: readonly string[] | '*') {}

  static readonly ALL = new RepositoryFilter('*');

  static of(prefixes: readonly string[]): RepositoryFilter {
    return new RepositoryFilter([...prefixes]);
  }

  /** `*`, or a comma-separated list of prefixes (`team-a/,base`). */
  static parse(value: string): RepositoryFilter {
    const text = value.trim();
    if (text === '*') return RepositoryFilter.ALL;
    const prefixes = text
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    const bad = prefixes.filter((p) => !/^[a-z0-9][a-z0-9._/-]*$/.test(p));
    if (prefixes.length === 0 || bad.length > 0) {
      throw new Error(
        `must be "*" or a comma-separated list of repository-name prefixes, got "${value}"` +
          (bad.length > 0 ? ` (not a repository-name prefix: ${bad.map((b) => `"${b}"`).join(', ')})` : ''),
      );
    }
    return new RepositoryFilter(prefixes);
  }

  matches(repository: string): boolean {
    return this.prefixes === '*' || this.prefixes.some((p) => repository.startsWith(p));
  }

  toString(): string {
    return this.prefixes === '*' ? '*' : this.prefixes.join(',');
  }
}

/** Where reconcile puts the images it found missing. */
export interface EventQueue {
  /** Enqueues every event; resolves when all are accepted, throws naming those that were not. */
  send(events: readonly ImageActionEvent[]): Promise<void>;
}

function valid(check: () => void): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}

function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 80 ? `"${t.slice(0, 80)}…"` : `"${t}"`;
}

/**
 * How reconcile was invoked. An EventBridge schedule (`source: aws.events`) is a `scheduled` run: a tag the vault
 * has never recorded is a missed event and alerted. Anything else (the CDK trigger after the first deploy, a manual
 * `aws lambda invoke`) is a `backfill`: images that existed before imagevault are enqueued without alerts. An
 * explicit `{"mode": "scheduled" | "backfill"}` wins.
 */
export type ReconcileMode = 'scheduled' | 'backfill';

const ReconcileTriggerSchema = z.looseObject({
  mode: z.enum(['scheduled', 'backfill']).optional(),
  source: z.string().optional(),
  'detail-type': z.string().optional(),
});

export function reconcileMode(event: unknown): ReconcileMode {
  if (event === undefined || event === null) return 'backfill';
  const parsed = ReconcileTriggerSchema.safeParse(event);
  if (!parsed.success) {
    throw new InvalidEventError(
      `not a reconcile trigger (an EventBridge scheduled event, or {"mode": "scheduled" | "backfill"}): ${problemsOf(parsed.error)}`,
    );
  }
  if (parsed.data.mode) return parsed.data.mode;
  return parsed.data.source === 'aws.events' ? 'scheduled' : 'backfill';
}

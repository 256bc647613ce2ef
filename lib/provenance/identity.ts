import * as z from 'zod';
import type { ObjectStore } from '../content';
import { Digest, validateRepository } from '../oci';
import { InvalidPutImageEventError } from './errors';
import { pendingKey } from './log';
import {
  DEFAULT_IDENTITY_WINDOW_HOURS,
  type IdentityStatus,
  type ProvenancePredicate,
  type PushedBy,
} from './types';

/*
 * The CloudTrail record of `ecr:PutImage`, as EventBridge delivers it (detail-type `AWS API Call via CloudTrail`,
 * source `aws.ecr`) or as the trail's log file holds it (the bare record). Only the fields we use are checked;
 * everything else passes through. userIdentity follows the CloudTrail userIdentity element: an IAMUser has an
 * ARN and userName, an AssumedRole session an `assumed-role/ROLE/SESSION` ARN and sessionContext.sessionIssuer.
 */
const SessionIssuerSchema = z.object({
  type: z.string(),
  principalId: z.string().optional(),
  arn: z.string(),
  accountId: z.string().optional(),
  userName: z.string().optional(),
});

const UserIdentitySchema = z
  .object({
    type: z.string(),
    principalId: z.string().optional(),
    arn: z.string().optional(),
    accountId: z.string().optional(),
    accessKeyId: z.string().optional(),
    userName: z.string().optional(),
    invokedBy: z.string().optional(),
    sessionContext: z
      .object({
        sessionIssuer: SessionIssuerSchema.partial().optional(),
        attributes: z.record(z.string(), z.unknown()).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();

export const PutImageRecordSchema = z
  .object({
    eventVersion: z.string().optional(),
    userIdentity: UserIdentitySchema,
    eventTime: z.string(),
    eventSource: z.literal('ecr.amazonaws.com'),
    eventName: z.literal('PutImage'),
    awsRegion: z.string().optional(),
    sourceIPAddress: z.string().optional(),
    userAgent: z.string().optional(),
    errorCode: z.string().optional(),
    errorMessage: z.string().optional(),
    requestParameters: z
      .object({
        repositoryName: z.string(),
        imageTag: z.string().optional(),
        imageDigest: z.string().optional(),
        registryId: z.string().optional(),
      })
      .passthrough(),
    responseElements: z
      .object({
        image: z
          .object({
            repositoryName: z.string().optional(),
            registryId: z.string().optional(),
            imageId: z.object({ imageDigest: z.string().optional(), imageTag: z.string().optional() }),
          })
          .passthrough(),
      })
      .passthrough()
      .nullable()
      .optional(),
    eventID: z.string().optional(),
    recipientAccountId: z.string().optional(),
  })
  .passthrough();
export type PutImageRecord = z.infer<typeof PutImageRecordSchema>;

/** Who pushed (repository, digest), from one PutImage call. Kept as the pending identity until joined. */
export interface PushIdentity {
  repository: string;
  digest: string;
  /** ECR registry id (the account) the image went to, when the event says. */
  registryId?: string;
  region?: string;
  tags: string[];
  time: string;
  pusher: PushedBy;
  sourceIp?: string;
  userAgent?: string;
  eventId?: string;
}

/** Parses an EventBridge CloudTrail event (or a bare CloudTrail record) for a successful ecr:PutImage. */
export function parsePutImageEvent(event: unknown): PushIdentity {
  const inner =
    typeof event === 'object' && event !== null && 'detail' in event
      ? (event as { detail: unknown }).detail
      : event;
  const r = PutImageRecordSchema.safeParse(inner);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InvalidPutImageEventError(`not a CloudTrail ecr:PutImage record: ${issues}`);
  }
  const rec = r.data;
  if (rec.errorCode)
    throw new InvalidPutImageEventError(
      `PutImage failed (${rec.errorCode}${rec.errorMessage ? `: ${rec.errorMessage}` : ''}): nothing was pushed`,
    );
  const digest = rec.responseElements?.image.imageId.imageDigest ?? rec.requestParameters.imageDigest;
  if (!digest || !Digest.isValid(digest))
    throw new InvalidPutImageEventError(
      `PutImage for ${rec.requestParameters.repositoryName} names no valid image digest`,
    );
  const repository = rec.requestParameters.repositoryName;
  validateRepository(repository);
  const tag = rec.requestParameters.imageTag ?? rec.responseElements?.image.imageId.imageTag;
  const u = rec.userIdentity;
  const issuer = u.sessionContext?.sessionIssuer;
  const pusher: PushedBy = {
    arn: u.arn ?? u.invokedBy ?? `${u.type}:${u.principalId ?? 'unknown'}`,
    type: u.type,
    ...(u.accountId ? { accountId: u.accountId } : {}),
    ...(issuer?.arn
      ? {
          sessionIssuer: {
            arn: issuer.arn,
            type: issuer.type ?? 'Role',
            ...(issuer.userName ? { userName: issuer.userName } : {}),
          },
        }
      : {}),
  };
  return {
    repository,
    digest,
    ...(rec.requestParameters.registryId ? { registryId: rec.requestParameters.registryId } : {}),
    ...(rec.awsRegion ? { region: rec.awsRegion } : {}),
    tags: tag ? [tag] : [],
    time: new Date(rec.eventTime).toISOString(),
    pusher,
    ...(rec.sourceIPAddress ? { sourceIp: rec.sourceIPAddress } : {}),
    ...(rec.userAgent ? { userAgent: rec.userAgent } : {}),
    ...(rec.eventID ? { eventId: rec.eventID } : {}),
  };
}

/** The predicate with the push identity filled in. Pure; the identity's tags are merged into the push's. */
export function applyIdentity(predicate: ProvenancePredicate, identity: PushIdentity): ProvenancePredicate {
  const tags = [...new Set([...predicate.push.tags, ...identity.tags])].sort();
  return {
    ...predicate,
    push: {
      time: identity.time,
      tags,
      pusher: identity.pusher,
      ...(identity.sourceIp ? { sourceIp: identity.sourceIp } : {}),
      ...(identity.userAgent ? { userAgent: identity.userAgent } : {}),
      identityStatus: 'known',
      reason: `CloudTrail ecr:PutImage event${identity.eventId ? ` ${identity.eventId}` : ''}`,
      ...(identity.eventId ? { cloudTrailEventId: identity.eventId } : {}),
    },
  };
}

/**
 * Joins a CloudTrail PutImage event to a provenance predicate: the pusher's ARN (and the CI role a session was
 * issued from), source IP, user agent and the push time. Pure. Throws InvalidPutImageEventError for another event.
 */
export function joinIdentity(
  predicate: ProvenancePredicate,
  cloudTrailPutImage: unknown,
): ProvenancePredicate {
  return applyIdentity(predicate, parsePutImageEvent(cloudTrailPutImage));
}

export const pendingReason =
  'waiting for the CloudTrail ecr:PutImage event (usually within 15 minutes of a push)';
export const unknownReason = (hours: number) =>
  `no CloudTrail PutImage event received within ${hours} hours — is the trail configured?`;

/**
 * What can honestly be said of an identity not (yet) joined: pending while the push is younger than the window,
 * unknown after. A known identity is returned as is.
 */
export function identityStatusAt(
  predicate: ProvenancePredicate,
  now: Date = new Date(),
  windowHours = DEFAULT_IDENTITY_WINDOW_HOURS,
): { identityStatus: IdentityStatus; reason: string } {
  const push = predicate.push;
  if (push.identityStatus === 'known') return { identityStatus: 'known', reason: push.reason };
  // Recorded as unknown (a registry that is not ECR: no CloudTrail event will ever name the pusher): it stays so.
  if (push.identityStatus === 'unknown') return { identityStatus: 'unknown', reason: push.reason };
  const age = now.getTime() - new Date(push.time).getTime();
  return age > windowHours * 3600_000
    ? { identityStatus: 'unknown', reason: unknownReason(windowHours) }
    : { identityStatus: 'pending', reason: pendingReason };
}

/**
 * Push identities by (repository, digest). CloudTrail may deliver PutImage before the snapshot writes its record:
 * the identity waits here and is applied when the record is written. It is also kept after, so a later rebuild
 * of the statement (a re-snapshot) applies it again; the store has no delete, and applying it twice is harmless.
 */
export class PendingIdentities {
  constructor(readonly store: ObjectStore) {}

  async get(repository: string, digest: string): Promise<PushIdentity | undefined> {
    const bytes = await this.store.getBytes(pendingKey(repository, digest));
    return bytes ? (JSON.parse(bytes.toString('utf8')) as PushIdentity) : undefined;
  }

  /** Stores the identity, merging tags with one already there (a push of one digest under several tags). */
  async put(identity: PushIdentity): Promise<PushIdentity> {
    const have = await this.get(identity.repository, identity.digest);
    const merged: PushIdentity = have
      ? {
          ...(have.time <= identity.time ? have : identity),
          tags: [...new Set([...have.tags, ...identity.tags])].sort(),
        }
      : identity;
    await this.store.putBytes(
      pendingKey(identity.repository, identity.digest),
      Buffer.from(JSON.stringify(merged, null, 2) + '\n'),
      { contentType: 'application/json' },
    );
    return merged;
  }
}

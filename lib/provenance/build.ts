import { NotInVaultError, blobKey, imageKey, readAll, type ImageRecord, type Vault } from '../content';
import { BASE_EXTENSION, type BaseRecord } from '../drift/types';
import {
  Digest,
  isAttestationManifest,
  isSlsaProvenanceLayer,
  parseManifest,
  platformString,
  type Descriptor,
  type Node,
} from '../oci';
import { canonicalize } from './canonical';
import { PendingIdentities, applyIdentity, identityStatusAt, type PushIdentity } from './identity';
import { ProvenanceLog, type LogRetention } from './log';
import { PREDICATE_TYPE_ANNOTATIONS, classifyReferrer } from './referrers';
import { PendingScans, scanPredicateOf } from './scan';
import { buildFactsOf } from './slsa';
import {
  PREDICATE_TYPE,
  STATEMENT_TYPE,
  type BasePredicate,
  type BuildPredicate,
  type ImagePredicate,
  type LogEntry,
  type ProvenancePredicate,
  type ProvenanceStatement,
  type ReferrerPredicate,
  type ScanPredicate,
  type SnapshotPredicate,
  type SnapshotReplication,
} from './types';

const OCI = 'org.opencontainers.image.';

export interface BuildProvenanceOptions {
  /** The registry the image was pushed to: the subject is named `<registry>/<repository>`. @default bare repository */
  readonly registry?: string;
  /** A push identity to join (from CloudTrail). @default none: pending, or unknown after the window */
  readonly identity?: PushIdentity;
  /** Scan findings. @default `status: 'unknown'` with the reason */
  readonly scan?: ScanPredicate;
  /**
   * The push as the caller saw it: when, under which tags. The snapshot path knows; without it every tag's history
   * in the repository is read to find the tags that pointed at the digest, which grows with the repository.
   * recordProvenance merges it with what earlier entries said (all tags, the earliest time).
   * @default read from the tag history
   */
  readonly push?: { time: string; tags: string[] };
  /** @default new Date() */
  readonly now?: Date;
  /** Hours to wait for CloudTrail before saying the identity is unknown. @default DEFAULT_IDENTITY_WINDOW_HOURS */
  readonly identityWindowHours?: number;
  /**
   * Whether a CloudTrail PutImage event can name the pusher: only for pushes to ECR. `false` says the identity is
   * unknown right away instead of pending for a day. @default true
   */
  readonly cloudTrail?: boolean;
  /**
   * How the image arrived when nobody pushed it (a pull-through cache sync, a replication from another registry):
   * no PutImage here names a pusher, so the identity is unknown at once, with this as the reason, instead of
   * pending for a day. @default none: it was pushed
   */
  readonly arrivedWithoutPush?: string;
}

/**
 * Builds the provenance statement of (repository, digest) from what the vault holds: the manifest(s) and config
 * for platforms, labels and annotations; the image record for the base and the referrers; the tag history for when
 * and under which tags it was pushed. Reads only; throws NotInVaultError when the image has no record.
 */
export async function buildProvenance(
  vault: Vault,
  repository: string,
  digest: string,
  extra: BuildProvenanceOptions = {},
): Promise<ProvenanceStatement> {
  const record = await vault.image(repository, digest);
  if (!record) throw new NotInVaultError(`${repository}@${digest} has no snapshot in ${vault.url}`);
  const { image, indexReferrers, build } = await describeImage(vault, record.descriptor);
  const referrers = await referrersOf(vault, record, indexReferrers);
  const { time, tags } = extra.push ?? (await pushOf(vault, record));
  const scan: ScanPredicate = extra.scan ?? {
    status: 'unknown',
    reason:
      'no ECR basic or Amazon Inspector scan result received for this image (scanning off for the repository, the scan still running, or the image is not in ECR)',
  };
  const snapshot = await snapshotOf(vault, repository, digest, record.lastSnapshotAt);
  let predicate: ProvenancePredicate = {
    push: { time, tags, identityStatus: 'pending', reason: '' },
    image,
    build,
    base: baseOf(record),
    referrers,
    scan,
    snapshot,
  };
  if (extra.identity) {
    predicate = applyIdentity(predicate, extra.identity);
  } else if (extra.cloudTrail === false || extra.arrivedWithoutPush) {
    const where = extra.registry ?? 'this registry';
    predicate = {
      ...predicate,
      push: {
        ...predicate.push,
        identityStatus: 'unknown',
        reason:
          extra.arrivedWithoutPush ??
          `${where} is not ECR: no CloudTrail PutImage event names who pushed (the registry's own logs might)`,
      },
    };
  } else {
    const status = identityStatusAt(predicate, extra.now, extra.identityWindowHours);
    predicate = { ...predicate, push: { ...predicate.push, ...status } };
  }
  return statementOf(extra.registry ? `${extra.registry}/${repository}` : repository, digest, predicate);
}

/**
 * Where the verified copy is: the root manifest and the image record, with their S3 version ids and replication as
 * the store reports them now. A blob is written once (content-addressed), so the manifest's version never changes.
 */
async function snapshotOf(
  vault: Vault,
  repository: string,
  digest: string,
  verifiedAt: string,
): Promise<SnapshotPredicate> {
  const keys = { manifest: blobKey(digest), record: imageKey(repository, digest) };
  let heads;
  try {
    heads = await Promise.all([vault.store.head(keys.manifest), vault.store.head(keys.record)]);
  } catch (e) {
    return {
      store: vault.url,
      keys,
      verifiedAt,
      replication: 'unknown',
      replicationReason: `the store could not be asked: ${(e as Error).message}`,
    };
  }
  const [manifest, record] = heads;
  const versionIds = {
    ...(manifest?.versionId ? { manifest: manifest.versionId } : {}),
    ...(record?.versionId ? { record: record.versionId } : {}),
  };
  const statuses = [manifest?.replication, record?.replication];
  let replication: SnapshotReplication;
  let replicationReason: string;
  if (statuses.includes('failed')) {
    replication = 'failed';
    replicationReason = 'S3 replication FAILED for an object of this snapshot: the replica region lacks it';
  } else if (statuses.includes('pending')) {
    replication = 'pending';
    replicationReason = 'S3 is still copying this snapshot to the replica region';
  } else if (statuses.every((s) => s === 'completed' || s === 'replica')) {
    replication = 'completed';
    replicationReason = 'S3 reports the manifest and the record replicated';
  } else {
    replication = 'not-replicated';
    replicationReason = manifest?.versionId
      ? 'the bucket reports no replication for these objects (no replication rule covers them)'
      : 'this store has no replication (a directory or an unversioned bucket)';
  }
  return {
    store: vault.url,
    keys,
    ...(Object.keys(versionIds).length > 0 ? { versionIds } : {}),
    verifiedAt,
    replication,
    replicationReason,
  };
}

function statementOf(name: string, digest: string, predicate: ProvenancePredicate): ProvenanceStatement {
  const d = Digest.parse(digest);
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name, digest: { [d.algorithm]: d.hex } as { sha256: string } }],
    predicateType: PREDICATE_TYPE,
    predicate,
  };
}

async function readJson(vault: Vault, desc: Descriptor): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse((await vault.fetchManifest(desc)).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

async function readNode(vault: Vault, desc: Descriptor): Promise<Node | undefined> {
  try {
    return parseManifest(await vault.fetchManifest(desc), desc.mediaType);
  } catch {
    return undefined;
  }
}

/** SLSA statements carry every material of a build; 16 MiB is far above any seen, and bounds memory. */
const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;

const NO_BUILD_ATTESTATION: BuildPredicate = {
  status: 'unknown',
  reason:
    'no SLSA provenance attestation in the image (BuildKit adds one with --provenance, or docker/build-push-action by default)',
};

/** The build facts of the first SLSA provenance layer of a BuildKit attestation manifest, if it has one. */
async function buildOf(vault: Vault, attestation: Node | undefined): Promise<BuildPredicate | undefined> {
  if (attestation?.kind !== 'manifest') return undefined;
  const layer = attestation.manifest.layers.find(isSlsaProvenanceLayer);
  if (!layer) return undefined;
  const predicateType = PREDICATE_TYPE_ANNOTATIONS.map((k) => layer.annotations?.[k]).find(Boolean) ?? '';
  const from = { digest: layer.digest, predicateType };
  try {
    const bytes = await readAll(await vault.fetch(layer), MAX_STATEMENT_BYTES, `attestation ${layer.digest}`);
    return { status: 'known', attestation: from, ...buildFactsOf(JSON.parse(bytes.toString('utf8'))) };
  } catch (e) {
    return {
      status: 'unknown',
      reason: `the SLSA provenance attestation could not be read: ${(e as Error).message}`,
      attestation: from,
    };
  }
}

async function describeImage(
  vault: Vault,
  root: Descriptor,
): Promise<{ image: ImagePredicate; indexReferrers: ReferrerPredicate[]; build: BuildPredicate }> {
  const node = await readNode(vault, root);
  const platforms: string[] = [];
  const indexReferrers: ReferrerPredicate[] = [];
  let build: BuildPredicate | undefined;
  let annotations: Record<string, string> = {};
  let first: Descriptor | undefined;
  if (node?.kind === 'index') {
    annotations = { ...node.index.annotations };
    for (const m of node.index.manifests) {
      if (isAttestationManifest(m)) {
        const att = await readNode(vault, m);
        const layerTypes =
          att?.kind === 'manifest'
            ? att.manifest.layers
                .map((l) => PREDICATE_TYPE_ANNOTATIONS.map((k) => l.annotations?.[k]).find(Boolean))
                .filter((v): v is string => v !== undefined)
            : [];
        indexReferrers.push(classifyReferrer(m, 'index', [...new Set(layerTypes)].join(',') || undefined));
        // One build made every platform: the first platform's statement speaks for the image.
        if (build?.status !== 'known') build = (await buildOf(vault, att)) ?? build;
        continue;
      }
      first ??= m;
      platforms.push(platformString(m.platform));
    }
  } else if (node?.kind === 'manifest') {
    first = root;
  }
  let labels: Record<string, string> = {};
  if (first) {
    const manifest = first === root ? node : await readNode(vault, first);
    if (manifest?.kind === 'manifest') {
      annotations = { ...manifest.manifest.annotations, ...annotations };
      const config = await readJson(vault, manifest.manifest.config);
      const inner = config?.config as { Labels?: Record<string, string> | null } | undefined;
      labels = { ...(inner?.Labels ?? {}) };
      if (first === root && config) {
        const p = config as { os?: string; architecture?: string; variant?: string };
        if (p.os && p.architecture)
          platforms.push(platformString({ os: p.os, architecture: p.architecture, variant: p.variant }));
      }
      const created = typeof config?.created === 'string' ? config.created : undefined;
      return {
        image: imagePredicate(root.mediaType, platforms, labels, annotations, created),
        indexReferrers,
        build: build ?? NO_BUILD_ATTESTATION,
      };
    }
  }
  return {
    image: imagePredicate(root.mediaType, platforms, labels, annotations),
    indexReferrers,
    build: build ?? NO_BUILD_ATTESTATION,
  };
}

function imagePredicate(
  mediaType: string,
  platforms: string[],
  labels: Record<string, string>,
  annotations: Record<string, string>,
  configCreated?: string,
): ImagePredicate {
  const pick = (k: string) => annotations[`${OCI}${k}`] ?? labels[`${OCI}${k}`];
  const source = pick('source');
  const revision = pick('revision');
  const created = pick('created') ?? configCreated;
  return {
    mediaType,
    platforms,
    labels,
    annotations,
    ...(source ? { source } : {}),
    ...(revision ? { revision } : {}),
    ...(created ? { created } : {}),
  };
}

async function referrersOf(
  vault: Vault,
  record: ImageRecord,
  fromIndex: ReferrerPredicate[],
): Promise<ReferrerPredicate[]> {
  const all = new Map<string, Descriptor>();
  for (const r of record.referrers) all.set(r.digest, r);
  for (const r of await vault.referrers(record.descriptor)) if (!all.has(r.digest)) all.set(r.digest, r);
  const out = [...fromIndex, ...[...all.values()].map((d) => classifyReferrer(d))];
  return out.sort((a, b) => a.digest.localeCompare(b.digest));
}

async function pushOf(vault: Vault, record: ImageRecord): Promise<{ time: string; tags: string[] }> {
  const tags: string[] = [];
  let time: string | undefined;
  for (const tag of await vault.tags(record.repository)) {
    const pushes = (await vault.history(record.repository, tag)).filter(
      (o) => o.action === 'push' && o.descriptor.digest === record.descriptor.digest,
    );
    if (pushes.length === 0) continue;
    tags.push(tag);
    if (!time || pushes[0].observedAt < time) time = pushes[0].observedAt;
  }
  return { time: time ?? record.firstSnapshotAt, tags: tags.sort() };
}

function baseOf(record: ImageRecord): BasePredicate {
  const base = record.extensions[BASE_EXTENSION] as BaseRecord | undefined;
  if (!base)
    return {
      status: 'unknown',
      reason: 'base detection did not run for this snapshot (run imagevault base REF)',
      platforms: [],
    };
  const platforms = base.platforms.map((p) => {
    const b = p.chain[0];
    if (!b) return { platform: p.platform, depth: 0 };
    return {
      platform: p.platform,
      ...(b.reference ? { reference: b.reference } : {}),
      ...(b.repository ? { repository: b.repository } : {}),
      digests: { manifest: b.manifestDigest, ...(b.indexDigest ? { index: b.indexDigest } : {}) },
      method: b.method,
      verified: b.verified,
      ...(b.evidence ? { evidence: b.evidence } : {}),
      depth: p.chain.length,
    };
  });
  const found = platforms.some((p) => p.depth > 0);
  return {
    status: found ? 'known' : 'unknown',
    ...(found ? {} : { reason: 'no base found: no annotation, provenance or candidate matched its layers' }),
    detectedAt: base.detectedAt,
    platforms,
  };
}

export interface RecordProvenanceOptions extends BuildProvenanceOptions {
  /** When the entry is appended. @default now */
  readonly time?: string;
  /** Object Lock on the entry appended. @default none (the bucket's default retention, if any) */
  readonly retention?: LogRetention;
}

export interface RecordProvenanceResult {
  statement: ProvenanceStatement;
  /** The entry appended, or the latest one when nothing changed. */
  entry: LogEntry;
  appended: boolean;
}

/**
 * Equal but for when the snapshot was last re-verified, which version of the image record that wrote, and when the
 * base was detected: every re-snapshot (a reconcile pass, a duplicate event, the CLI's base detection finding the
 * same base again) refreshes them, and a new log entry for them alone would grow the log without telling anyone
 * anything (and cost every repeat snapshot five requests).
 */
function sameFacts(a: ProvenanceStatement, b: ProvenanceStatement): boolean {
  const strip = (x: ProvenanceStatement) => {
    const { versionIds, ...snapshot } = x.predicate.snapshot;
    return {
      ...x,
      predicate: {
        ...x.predicate,
        base: { ...x.predicate.base, detectedAt: undefined },
        snapshot: { ...snapshot, verifiedAt: undefined, manifestVersion: versionIds?.manifest },
      },
    };
  };
  return canonicalize(strip(a)) === canonicalize(strip(b));
}

/**
 * What the snapshot path calls once the image record is written: builds the statement, joins a push identity
 * that arrived first (see PendingIdentities), keeps what earlier entries learnt (an identity, a scan), and appends
 * it to the repository's log — unless the newest entry for the digest already says exactly this.
 */
export async function recordProvenance(
  vault: Vault,
  repository: string,
  digest: string,
  options: RecordProvenanceOptions = {},
): Promise<RecordProvenanceResult> {
  const log = ProvenanceLog.of(vault, { retention: options.retention });
  let statement: ProvenanceStatement | undefined;
  // Built on the digest's newest entry; again on the log as it is then if another writer appended first.
  const { entry, appended } = await log.appendFor(
    repository,
    digest,
    async (previous) => {
      const identity = options.identity ?? (await new PendingIdentities(vault.store).get(repository, digest));
      const pendingScan = options.scan
        ? undefined
        : await new PendingScans(vault.store).get(repository, digest);
      const scan = options.scan ?? (pendingScan ? scanPredicateOf(pendingScan) : undefined);
      // The caller's view of the push, widened by what earlier entries saw: every tag, the earliest time (before
      // the identity's pending/unknown is decided from it).
      const seen = previous?.statement.predicate.push;
      const push =
        options.push && seen
          ? {
              time: seen.time < options.push.time ? seen.time : options.push.time,
              tags: [...new Set([...seen.tags, ...options.push.tags])].sort(),
            }
          : options.push;
      statement = await buildProvenance(vault, repository, digest, { ...options, identity, scan, push });
      if (previous) statement = carryForward(statement, previous.statement);
      return previous && sameFacts(previous.statement, statement) ? undefined : statement;
    },
    options.time,
  );
  return { statement: statement!, entry: entry!, appended };
}

/** Keeps an identity or scan an earlier entry learnt when the new statement has none, and an identity's unknown. */
function carryForward(next: ProvenanceStatement, prev: ProvenanceStatement): ProvenanceStatement {
  const p = next.predicate;
  const q = prev.predicate;
  const tags = [...new Set([...q.push.tags, ...p.push.tags])].sort();
  let push = { ...p.push, tags };
  if (p.push.identityStatus !== 'known' && q.push.identityStatus === 'known') push = { ...q.push, tags };
  // Unknown (the window passed, or not ECR) never turns back into pending; only a CloudTrail event changes it.
  if (push.identityStatus === 'pending' && q.push.identityStatus === 'unknown')
    push = { ...push, identityStatus: 'unknown', reason: q.push.reason };
  const scan = p.scan.status === 'unknown' && q.scan.status !== 'unknown' ? q.scan : p.scan;
  return { ...next, predicate: { ...p, push, scan } };
}

export interface RefreshProvenanceOptions {
  /** @default new Date() */
  readonly now?: Date;
  /** Object Lock on entries appended. @default none */
  readonly retention?: LogRetention;
  /** Hours to wait for CloudTrail before saying the identity is unknown. @default DEFAULT_IDENTITY_WINDOW_HOURS */
  readonly identityWindowHours?: number;
  /**
   * How far back entries are looked at. What is pending resolves within a day (the CloudTrail window) or hours
   * (replication), and the reconcile runs every few hours: a week covers a reconcile that was down for days, and
   * keeps each run's cost to the last week's pushes instead of the whole log. @default 7
   */
  readonly lookbackDays?: number;
}

export interface RefreshProvenanceResult {
  repository: string;
  /** Records whose newest entry was still waiting on replication or on CloudTrail. */
  checked: number;
  /** Entries appended because the answer changed (replicated, failed, identity now unknown). */
  appended: number;
}

/**
 * Asks again what a record left pending: whether S3 has replicated the snapshot, and whether the CloudTrail
 * identity is still coming (after the window it is unknown). Nothing else calls back when these change, so the
 * reconcile runs this; an answer that changed is a new entry, the earlier one stays.
 */
export async function refreshProvenance(
  vault: Vault,
  repository: string,
  options: RefreshProvenanceOptions = {},
): Promise<RefreshProvenanceResult> {
  const log = ProvenanceLog.of(vault);
  const now = options.now ?? new Date();
  const since = new Date(now.getTime() - (options.lookbackDays ?? 7) * 86_400_000);
  let checked = 0;
  let appended = 0;
  const seen = new Set<string>();
  for (const latest of await log.recent(repository, since)) {
    // Newest first: the first entry of a digest is its record; older ones are history.
    if (seen.has(latest.digest)) continue;
    seen.add(latest.digest);
    const p = latest.statement.predicate;
    if (p.snapshot.replication !== 'pending' && p.push.identityStatus !== 'pending') continue;
    checked++;
    const name = latest.statement.subject[0]?.name ?? repository;
    const registry = name.endsWith(`/${repository}`) ? name.slice(0, -repository.length - 1) : undefined;
    const result = await recordProvenance(vault, repository, latest.digest, {
      ...(registry ? { registry } : {}),
      push: { time: p.push.time, tags: p.push.tags },
      ...options,
      now,
    });
    if (result.appended) appended++;
  }
  return { repository, checked, appended };
}

/**
 * The provenance record: an in-toto Statement v1 whose predicate (type PREDICATE_TYPE) says who pushed an image,
 * what it is, what it is built on, what refers to it (signatures, SBOMs, attestations), whether it was scanned, and
 * where the verified copy is. Every field that can be unknown says so with a status and a reason, never by omission
 * alone. Documented in the README (Provenance).
 */

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://imagevault.dev/provenance/v1';

/** How long a push may wait for its CloudTrail PutImage event before the identity is reported unknown. */
export const DEFAULT_IDENTITY_WINDOW_HOURS = 24;

export interface ResourceDescriptor {
  /** `<registry>/<repository>`, or the bare repository when the registry is not known. */
  name: string;
  digest: { sha256: string };
}

/** Who pushed an image, as CloudTrail names the caller of `ecr:PutImage`. */
export interface PushedBy {
  /** The caller's ARN (an IAM user, or an assumed-role session `arn:aws:sts::…:assumed-role/ROLE/SESSION`). */
  arn: string;
  /** CloudTrail `userIdentity.type`: IAMUser, AssumedRole, Root, FederatedUser, AWSService, … */
  type: string;
  accountId?: string;
  /** For an assumed role: the role the session was issued from (a CI role). */
  sessionIssuer?: { arn: string; type: string; userName?: string };
}

export type IdentityStatus = 'known' | 'pending' | 'unknown';

export interface PushPredicate {
  /** When the image was pushed: CloudTrail's eventTime when joined, else the first time the vault observed it. */
  time: string;
  /** Tags observed pointing at the digest. */
  tags: string[];
  pusher?: PushedBy;
  sourceIp?: string;
  userAgent?: string;
  identityStatus: IdentityStatus;
  /** Why the identity is pending or unknown; where it came from when known. */
  reason: string;
  /** CloudTrail eventID of the PutImage call the identity came from. */
  cloudTrailEventId?: string;
}

export interface ImagePredicate {
  mediaType: string;
  /** `os/arch[/variant]` of each image manifest (an index's attestation entries are not platforms). */
  platforms: string[];
  /** Config labels (of the first platform; per-platform differences are rare and not kept). */
  labels: Record<string, string>;
  /** The manifest's (or index's) annotations. */
  annotations: Record<string, string>;
  /** `org.opencontainers.image.source`, from annotations first, then labels. */
  source?: string;
  /** `org.opencontainers.image.revision` (the commit). */
  revision?: string;
  /** `org.opencontainers.image.created`. */
  created?: string;
}

export interface BasePlatformPredicate {
  platform: string;
  /** The nearest base, when one was found. */
  reference?: string;
  repository?: string;
  digests?: { manifest: string; index?: string };
  method?: string;
  verified?: boolean;
  evidence?: string;
  /** How many bases deep the chain goes (app → internal base → ruby is 2). */
  depth: number;
}

export interface BasePredicate {
  status: 'known' | 'unknown';
  reason?: string;
  detectedAt?: string;
  platforms: BasePlatformPredicate[];
}

export type ReferrerKind = 'signature' | 'sbom' | 'attestation' | 'other';

export interface Signer {
  tool: 'cosign' | 'notation' | 'unknown';
  /** Keyless cosign: the certificate's subject alternative name (an e-mail, a workflow URL). */
  identity?: string;
  /** Keyless cosign: the certificate issuer. */
  issuer?: string;
  /** Notation: the signing certificate chain's sha256 thumbprints. */
  thumbprints?: string[];
  /** Present when the signer cannot be named from what the referrer carries, with why. */
  note?: string;
}

export interface ReferrerPredicate {
  digest: string;
  mediaType: string;
  artifactType?: string;
  kind: ReferrerKind;
  /** in-toto predicate type of an attestation, when it says (BuildKit layers, cosign annotations). */
  predicateType?: string;
  /** `referrer` (OCI subject), or `index` (a BuildKit attestation manifest inside the image's index). */
  via: 'referrer' | 'index';
  signer?: Signer;
}

/** Most severe findings kept in the record: CRITICAL and HIGH only, at most this many (the counts cover the rest). */
export const MAX_TOP_FINDINGS = 20;

/** `ecr-basic`: ECR basic scanning (`ECR Image Scan` events); `inspector`: ECR enhanced scanning by Amazon Inspector. */
export type Scanner = 'ecr-basic' | 'inspector';

/** One vulnerability finding, as ECR's DescribeImageScanFindings reports it (basic or enhanced). */
export interface ScanFinding {
  /** The vulnerability id (a CVE), or the finding's title or ARN when it names none. */
  id: string;
  /** The scanner's severity: CRITICAL, HIGH, … */
  severity: string;
  /** The vulnerable package (the first one, when a finding names several). */
  package?: string;
  /** The package version installed in the image. */
  version?: string;
  /** The version that fixes it, when the scanner knows one (Inspector only). */
  fixedIn?: string;
  /** Where the vulnerability is described. */
  uri?: string;
}

/**
 * The newest vulnerability scan of the image. `unknown` when no scan result was received (scanning off, still
 * running, or an image that is not in ECR), with the reason; `complete` or `failed` as the scanner reported it.
 */
export interface ScanPredicate {
  status: 'unknown' | 'complete' | 'failed';
  /** Why the status is unknown or failed; for a complete scan, what could not be read (finding details). */
  reason?: string;
  scanner?: Scanner;
  /** When the scan completed: the time of the scanner's EventBridge event. */
  completedAt?: string;
  /** Finding counts by severity, as the scanner reported them (Inspector adds TOTAL). A severity with none is absent. */
  findings?: Record<string, number>;
  /** The most severe findings (CRITICAL, then HIGH; at most MAX_TOP_FINDINGS), when their details were read. */
  top?: ScanFinding[];
  /** The id of the EventBridge event the result came from. */
  eventId?: string;
}

/**
 * Replication of the snapshot's objects to the replica region: `pending` until S3 has copied them all, `failed`
 * when it gave up on one; `not-replicated` when the store reports no replication (a directory, a bucket without a
 * replication rule); `unknown` when the store could not be asked.
 */
export type SnapshotReplication = 'unknown' | 'not-replicated' | 'pending' | 'completed' | 'failed';

export interface SnapshotPredicate {
  /** The vault's URL: `file:///…` or `s3://bucket/prefix`. */
  store: string;
  keys: { manifest: string; record: string };
  /**
   * Object version ids, when the store keeps versions: the manifest's pins the exact bytes restored from; the
   * record's is the version of the image record when this entry was written (re-snapshots write new ones).
   */
  versionIds?: { manifest?: string; record?: string };
  /** When the vault last copied and verified the whole graph (the record's lastSnapshotAt). */
  verifiedAt: string;
  replication: SnapshotReplication;
  /** What the replication status means here, or why it is unknown. */
  replicationReason?: string;
}

/**
 * How the image was built, as its SLSA provenance attestation claims (BuildKit's, in the image's index). Unsigned
 * claims of the builder: they say which CI run and commit, they do not prove it.
 */
export interface BuildPredicate {
  status: 'known' | 'unknown';
  /** Why it is unknown, or what could not be read. */
  reason?: string;
  /** The attestation the facts come from: its in-toto layer's digest (a blob in the vault) and predicate type. */
  attestation?: { digest: string; predicateType: string };
  /** The builder's id: BuildKit sets it to the CI run's URL (GitHub Actions: …/actions/runs/<id>) when it has one. */
  builderId?: string;
  /** The build's invocation id (BuildKit's buildInvocationID / invocationID). */
  invocationId?: string;
  /** What the build was configured from: a git URL (with ref) or a local Dockerfile path. */
  configSource?: string;
  /** The source repository and commit, from the build's VCS metadata or the config source's digest. */
  source?: string;
  revision?: string;
  /**
   * `config-source`: BuildKit resolved the git context itself; `vcs-hint`: the build client's `vcs:revision`, which
   * BuildKit does not check.
   */
  revisionFrom?: 'config-source' | 'vcs-hint';
  startedOn?: string;
  finishedOn?: string;
}

export interface ProvenancePredicate {
  push: PushPredicate;
  image: ImagePredicate;
  /** Absent from entries written before imagevault read build attestations. */
  build?: BuildPredicate;
  base: BasePredicate;
  referrers: ReferrerPredicate[];
  scan: ScanPredicate;
  snapshot: SnapshotPredicate;
}

export interface ProvenanceStatement {
  _type: typeof STATEMENT_TYPE;
  subject: ResourceDescriptor[];
  predicateType: typeof PREDICATE_TYPE;
  predicate: ProvenancePredicate;
}

/** One entry of a repository's hash-chained log. */
export interface LogEntry {
  seq: number;
  /** When the entry was appended. */
  time: string;
  repository: string;
  digest: string;
  statement: ProvenanceStatement;
  /** `hash` of the entry before, null for the first. */
  previous: string | null;
  /** sha256 hex of the canonical JSON of this entry without its `hash` member. */
  hash: string;
}

import type { Vault } from '../../content';
import { Inventory, type InUseEntry } from '../../content/inventory';
import {
  ProvenanceLog,
  SEVERITY_ORDER,
  buildProvenance,
  findingsAtLeast,
  identityStatusAt,
  latestByDigest,
  logKey,
  orderedCounts,
  scannerName,
  type ChainReport,
  type IdentityStatus,
  type BuildPredicate,
  type LogEntry,
  type ProvenanceStatement,
  type ScanPredicate,
} from '../../provenance';
import { UpstreamLog, type UpstreamStatus } from '../../drift/upstream-state';
import type { CommandContext } from '../context';
import { ExitCode } from '../exit';
import { out } from './format';
import { parseVaultRef } from '../vault-ref';

export interface ProvenanceShowReport {
  image: string;
  repository: string;
  digest: string;
  /** False when the log has no entry for the image: the statement was built now from the vault, not recorded. */
  recorded: boolean;
  entry?: { seq: number; time: string; hash: string; key: string };
  /** The identity status as of now: a pending identity past its window is unknown. */
  identity: { status: IdentityStatus; reason: string };
  /**
   * Has the base moved since? Per platform with a known base, where its upstream tag stands now by the upstream
   * check's record. Not part of the record: it changes after the image was pushed.
   */
  upstream: Array<UpstreamStatus & { platform: string }>;
  /** Where the image runs or ran, by the inventory's scans (`imagevault inventory`). Not part of the record. */
  running: InUseEntry[];
  statement: ProvenanceStatement;
}

export interface ProvenanceListRow {
  repository: string;
  digest: string;
  pushedAt: string;
  tags: string[];
  pushedBy?: string;
  sessionIssuer?: string;
  identity: IdentityStatus;
  signed: boolean;
  bases: string[];
  source?: string;
  /** The revision annotation, else the commit the build attestation names. */
  revision?: string;
  /** The build attestation's builder id: the CI run's URL when BuildKit ran in CI. */
  builtBy?: string;
  /** The scan's status, and its finding counts by severity when it completed. */
  scan: ScanPredicate['status'];
  vulnerabilities?: Record<string, number>;
  seq: number;
}

export interface ProvenanceListFilter {
  repo?: string;
  since?: string;
  pushedBy?: string;
  base?: string;
  unsigned?: boolean;
  /** Only images whose scan found something at this severity or worse; `true` (the bare flag) means HIGH. */
  vulnerable?: string | boolean;
}

/** `imagevault provenance show REF`: the provenance of one vault image, saying plainly what is unknown and why. */
export async function provenanceShowCommand(
  ctx: CommandContext,
  spec: string,
  o: { json?: boolean },
): Promise<void> {
  const report = await provenanceShow(await ctx.vault(), spec);
  out(o.json ?? ctx.opts().json, report, () => formatProvenance(report));
}

/** `imagevault provenance list`: the newest record of every image, filtered. */
export async function provenanceListCommand(
  ctx: CommandContext,
  o: ProvenanceListFilter & { json?: boolean },
): Promise<void> {
  const rows = await provenanceList(await ctx.vault(), o);
  out(o.json ?? ctx.opts().json, { images: rows }, () => formatList(rows));
}

/** `imagevault provenance verify [REPO]`: recompute every log's hash chain; exit 4 when one is broken. */
export async function provenanceVerifyCommand(
  ctx: CommandContext,
  repository: string | undefined,
  o: { json?: boolean },
): Promise<void> {
  const reports = await provenanceVerify(await ctx.vault(), repository);
  out(o.json ?? ctx.opts().json, { chains: reports }, () => formatVerify(reports));
  if (reports.some((r) => !r.ok)) process.exitCode = ExitCode.VerifyFailed;
}

export async function provenanceShow(
  vault: Vault,
  spec: string,
  now = new Date(),
): Promise<ProvenanceShowReport> {
  const { repository, tag, digest: given } = parseVaultRef(spec);
  const digest = given ?? (await vault.resolveTag(repository, tag ?? 'latest')).descriptor.digest;
  const entry = await ProvenanceLog.of(vault).latest(repository, digest);
  const statement = entry?.statement ?? (await buildProvenance(vault, repository, digest, { now }));
  const status = identityStatusAt(statement.predicate, now);
  return {
    image: spec,
    repository,
    digest,
    recorded: entry !== undefined,
    ...(entry
      ? { entry: { seq: entry.seq, time: entry.time, hash: entry.hash, key: logKey(repository, entry.seq) } }
      : {}),
    identity: { status: status.identityStatus, reason: status.reason },
    upstream: await upstreamOf(vault, statement),
    running: await new Inventory(vault.store).where(repository, digest),
    statement,
  };
}

async function upstreamOf(
  vault: Vault,
  statement: ProvenanceStatement,
): Promise<ProvenanceShowReport['upstream']> {
  const state = new UpstreamLog(vault.store);
  const out: ProvenanceShowReport['upstream'] = [];
  for (const b of statement.predicate.base.platforms) {
    if (!b.reference || !b.digests) continue;
    out.push({ platform: b.platform, ...(await state.statusOf(b.reference, b.platform, b.digests)) });
  }
  return out;
}

export async function provenanceList(
  vault: Vault,
  filter: ProvenanceListFilter = {},
  now = new Date(),
): Promise<ProvenanceListRow[]> {
  const log = ProvenanceLog.of(vault);
  const since = filter.since ? new Date(filter.since) : undefined;
  if (since && Number.isNaN(since.getTime()))
    throw new Error(`--since "${filter.since}" is not a valid time`);
  const vulnerable =
    filter.vulnerable === true ? 'HIGH' : filter.vulnerable ? filter.vulnerable.toUpperCase() : undefined;
  if (vulnerable !== undefined && !(SEVERITY_ORDER as readonly string[]).includes(vulnerable))
    throw new Error(
      `--vulnerable "${String(filter.vulnerable)}" is not a severity: use one of ${SEVERITY_ORDER.join(', ')}`,
    );
  const repos = (await log.repositories()).filter(
    (r) => !filter.repo || r === filter.repo || r.startsWith(`${filter.repo}/`),
  );
  const rows: ProvenanceListRow[] = [];
  for (const repository of repos) {
    for (const e of latestByDigest(await log.entries(repository))) {
      const row = rowOf(e, now);
      if (since && new Date(row.pushedAt) < since) continue;
      if (filter.pushedBy && ![row.pushedBy, row.sessionIssuer].some((v) => v?.includes(filter.pushedBy!)))
        continue;
      if (filter.base) {
        const want = filter.base;
        const p = e.statement.predicate.base.platforms;
        const hit = p.some((b) =>
          [b.reference, b.repository, b.digests?.manifest, b.digests?.index].some((v) => v?.includes(want)),
        );
        if (!hit) continue;
      }
      if (filter.unsigned && row.signed) continue;
      if (vulnerable && findingsAtLeast(row.vulnerabilities, vulnerable) === 0) continue;
      rows.push(row);
    }
  }
  return rows.sort(
    (a, b) => b.pushedAt.localeCompare(a.pushedAt) || a.repository.localeCompare(b.repository),
  );
}

function rowOf(e: LogEntry, now: Date): ProvenanceListRow {
  const p = e.statement.predicate;
  return {
    repository: e.repository,
    digest: e.digest,
    pushedAt: p.push.time,
    tags: p.push.tags,
    ...(p.push.pusher ? { pushedBy: p.push.pusher.arn } : {}),
    ...(p.push.pusher?.sessionIssuer ? { sessionIssuer: p.push.pusher.sessionIssuer.arn } : {}),
    identity: identityStatusAt(p, now).identityStatus,
    signed: p.referrers.some((r) => r.kind === 'signature'),
    bases: [
      ...new Set(p.base.platforms.map((b) => b.reference ?? b.digests?.manifest).filter(Boolean)),
    ] as string[],
    ...(p.image.source ? { source: p.image.source } : {}),
    ...(p.image.revision
      ? { revision: p.image.revision }
      : p.build?.revision
        ? { revision: p.build.revision }
        : {}),
    ...(p.build?.builderId ? { builtBy: p.build.builderId } : {}),
    scan: p.scan.status,
    ...(p.scan.status === 'complete' && p.scan.findings ? { vulnerabilities: p.scan.findings } : {}),
    seq: e.seq,
  };
}

export async function provenanceVerify(vault: Vault, repository?: string): Promise<ChainReport[]> {
  const log = ProvenanceLog.of(vault);
  const repos = repository ? [repository] : await log.repositories();
  const out: ChainReport[] = [];
  for (const r of repos) out.push(await log.verify(r));
  return out;
}

const short = (digest: string) => `${digest.slice(0, 19)}…`;

/** The commit: the image's revision annotation, else what its build attestation says (and how far to trust it). */
function commitOf(p: ProvenanceStatement['predicate']): string {
  if (p.image.revision) return p.image.revision;
  const b = p.build;
  if (b?.revision)
    return `${b.revision}${b.source ? ` of ${b.source}` : ''} (${b.revisionFrom === 'vcs-hint' ? "the build client's claim in the attestation, not checked by BuildKit" : 'the git context BuildKit built from'})`;
  return 'unknown (no org.opencontainers.image.revision annotation or label, no commit in a build attestation)';
}

/** The CI run and build invocation, from the SLSA provenance attestation. */
function builtBy(b: BuildPredicate | undefined): string {
  if (!b) return 'unknown: recorded before imagevault read build attestations (re-snapshot to add it)';
  if (b.status === 'unknown') return `unknown: ${b.reason ?? 'no build attestation'}`;
  const run = b.builderId ?? 'a builder that gave no id (no CI run URL)';
  const parts = [
    b.invocationId && `invocation ${b.invocationId}`,
    b.startedOn && `started ${b.startedOn}`,
    b.configSource && `from ${b.configSource}`,
  ].filter(Boolean);
  return `${run}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}; as the SLSA attestation ${short(b.attestation?.digest ?? '')} claims (its signature not checked here)`;
}

export function formatProvenance(r: ProvenanceShowReport): string {
  const p = r.statement.predicate;
  const lines = [
    `${r.repository}@${r.digest}`,
    r.entry
      ? `  record:    log entry ${r.entry.seq} (${r.entry.key}), written ${r.entry.time}`
      : '  record:    NOT recorded in the provenance log: built now from what the vault holds',
  ];
  const who = p.push.pusher
    ? `${p.push.pusher.arn} (${p.push.pusher.type})${p.push.pusher.sessionIssuer ? `, session issued by ${p.push.pusher.sessionIssuer.arn}` : ''}`
    : `${r.identity.status}: ${r.identity.reason}`;
  lines.push(`  pushed by: ${who}`);
  if (p.push.sourceIp || p.push.userAgent)
    lines.push(
      `             from ${p.push.sourceIp ?? 'unknown IP'} with ${p.push.userAgent ?? 'unknown agent'}`,
    );
  lines.push(
    `  pushed:    ${p.push.time}${p.push.identityStatus === 'known' ? ' (CloudTrail)' : ' (first seen by the vault)'}, tags: ${p.push.tags.join(', ') || 'none'}`,
  );
  lines.push(
    `  source:    ${p.image.source ?? 'unknown (no org.opencontainers.image.source annotation or label)'}`,
    `  commit:    ${commitOf(p)}`,
    `  created:   ${p.image.created ?? 'unknown (no org.opencontainers.image.created, no config created time)'}`,
    `  image:     ${p.image.mediaType}, platforms ${p.image.platforms.join(', ') || 'unknown'}`,
    `  built by:  ${builtBy(p.build)}`,
  );
  if (p.base.status === 'unknown' && p.base.platforms.every((b) => b.depth === 0)) {
    lines.push(`  base:      unknown: ${p.base.reason ?? 'no base found'}`);
  } else {
    for (const b of p.base.platforms) {
      lines.push(
        b.depth === 0
          ? `  base:      ${b.platform}: none found`
          : `  base:      ${b.platform}: ${b.reference ?? b.repository ?? '(unnamed)'} ${short(b.digests!.manifest)} (${b.method}${b.evidence ? `, ${b.evidence}` : ''}, ${b.verified ? 'verified' : 'NOT verified'})`,
      );
    }
    for (const u of r.upstream) {
      const now = u.digest ? ` (tag now ${short(u.digest)}, first seen ${u.observedAt})` : '';
      lines.push(`  upstream:  ${u.platform}: ${u.reference} ${u.status.toUpperCase()}${now}: ${u.detail}`);
    }
  }
  const signatures = p.referrers.filter((x) => x.kind === 'signature');
  if (signatures.length === 0) lines.push('  signed:    no: no signature referrer in the vault');
  for (const s of signatures) {
    const signer = s.signer;
    const by = signer?.identity
      ? `${signer.identity}${signer.issuer ? ` (issuer ${signer.issuer})` : ''}`
      : signer?.thumbprints
        ? `certificate ${signer.thumbprints[0]}`
        : `signer unknown: ${signer?.note ?? 'not stated'}`;
    lines.push(`  signed:    yes: ${signer?.tool ?? 'unknown'} signature ${short(s.digest)}, by ${by}`);
  }
  for (const a of p.referrers.filter((x) => x.kind === 'sbom' || x.kind === 'attestation'))
    lines.push(
      `  ${a.kind === 'sbom' ? 'sbom:      ' : 'attests:   '}${a.artifactType ?? a.mediaType}${a.predicateType ? ` (${a.predicateType})` : ''} ${short(a.digest)}${a.via === 'index' ? ' (in the index)' : ''}`,
    );
  lines.push(...formatScan(p.scan));
  for (const e of r.running ?? [])
    lines.push(
      `  running in: ${e.where}${e.running ? '' : ' (no longer)'}, first seen ${e.firstSeen}, last seen ${e.lastSeen}`,
    );
  lines.push(
    `  copy:      ${p.snapshot.store} ${p.snapshot.keys.manifest}${versionOf(p.snapshot.versionIds?.manifest)}, verified ${p.snapshot.verifiedAt}`,
    `             record ${p.snapshot.keys.record}${versionOf(p.snapshot.versionIds?.record)}${p.snapshot.versionIds ? '' : ' (this store keeps no versions)'}`,
    `  replica:   ${p.snapshot.replication}${p.snapshot.replicationReason ? `: ${p.snapshot.replicationReason}` : ''}`,
  );
  return lines.join('\n');
}

const countsOf = (findings: Record<string, number>) =>
  orderedCounts(findings)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ') || 'no findings';

/** The scan: who scanned and when, the counts (most severe first), then the CRITICAL and HIGH findings. */
export function formatScan(scan: ScanPredicate): string[] {
  if (scan.status === 'unknown') return [`  scanned:   unknown: ${scan.reason ?? 'no scan result received'}`];
  const by = `${scan.scanner ? ` by ${scannerName(scan.scanner)}` : ''}${scan.completedAt ? `, ${scan.completedAt}` : ''}`;
  if (scan.status === 'failed') return [`  scanned:   FAILED${by}${scan.reason ? `: ${scan.reason}` : ''}`];
  const lines = [`  scanned:   complete${by}: ${countsOf(scan.findings ?? {})}`];
  for (const f of scan.top ?? []) {
    const pkg = f.package ? ` ${f.package}${f.version ? ` ${f.version}` : ''}` : '';
    const fix = f.package ? (f.fixedIn ? ` → ${f.fixedIn}` : ' (no fixed version known)') : '';
    lines.push(`             ${f.severity.padEnd(8)} ${f.id}${pkg}${fix}`);
  }
  if (scan.reason) lines.push(`             note: ${scan.reason}`);
  return lines;
}

function formatList(rows: ProvenanceListRow[]): string {
  if (rows.length === 0) return 'no images match';
  return rows
    .map((r) =>
      [
        `${r.repository}@${short(r.digest)}`,
        r.pushedAt,
        r.tags.join(',') || '-',
        r.pushedBy ?? `(${r.identity})`,
        r.signed ? 'signed' : 'UNSIGNED',
        r.bases.join(',') || '(base unknown)',
        r.vulnerabilities ? countsOf(r.vulnerabilities) : `(scan ${r.scan})`,
      ].join('\t'),
    )
    .join('\n');
}

const versionOf = (id: string | undefined) => (id ? ` (version ${id})` : '');

function formatVerify(reports: ChainReport[]): string {
  if (reports.length === 0) return 'no provenance logs';
  const lines: string[] = [];
  for (const r of reports) {
    const versions =
      r.versions === 'checked'
        ? 'each entry written once, none deleted'
        : r.versions === 'not-kept'
          ? `versions not checked: ${r.versionsNote ?? 'this store keeps none'}`
          : `VERSIONS NOT CHECKED: ${r.versionsNote ?? 'unknown reason'}`;
    lines.push(
      r.ok
        ? `${r.repository}: ${r.entries} entries, chain intact, ${versions}; head ${r.head ?? 'none'}`
        : `${r.repository}: ${r.entries} entries, CHAIN BROKEN`,
    );
    for (const p of r.problems) lines.push(`  ${p.kind}: ${p.key}: ${p.detail}`);
  }
  return lines.join('\n');
}

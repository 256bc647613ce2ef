import type { Vault } from '../../content';
import { detectBase, type CandidateBases } from '../../drift/base';
import { NewerVersionsCheck } from '../../drift/newer-versions';
import { RegistrySource, VaultFirstSource } from '../../drift/source';
import { baseRecordOf } from '../../drift/build-drift';
import type { BaseRecord, BaseRef, PlatformBase } from '../../drift/types';
import { Reference } from '../../oci';
import type { Registries } from '../../registry';
import { dockerConfigCredentials } from '../../registry';
import { timeoutsOf, type CommandContext } from '../context';
import { out } from './format';
import { newerForChains, newerKey, newerLine, type BaseNewer } from './newer';
import { parseVaultRef } from '../vault-ref';

/** Whether the base's tag still names what the image was built on (one HEAD per distinct tag). */
export interface UpstreamTagStatus {
  /** What the tag points at now. */
  digest?: string;
  /** The digest recorded at detection the tag is compared with: the index's when the base is an index. */
  recorded: string;
  moved?: boolean;
  error?: string;
}

export type BaseEntryReport = BaseRef & { upstream?: UpstreamTagStatus; newer?: BaseNewer };

export interface BaseReport {
  image: string;
  digest: string;
  /** `vault`: the record written at snapshot time; `live`: detected now. */
  source: 'vault' | 'live';
  detectedAt: string;
  platforms: (Omit<PlatformBase, 'chain'> & { chain: BaseEntryReport[] })[];
}

export interface BaseCommandOptions {
  candidate: string[];
  upstream: boolean;
}

/** `imagevault base REF`: what an image is built on, how we know, and whether upstream moved. */
export async function baseCommand(ctx: CommandContext, spec: string, cmd: BaseCommandOptions): Promise<void> {
  const opts = ctx.opts();
  const vault = await ctx.vault();
  const registries = ctx.registries();
  const candidates: CandidateBases = cmd.candidate.length > 0 ? { '': cmd.candidate } : {};
  const report = await baseReport(vault, registries, spec, { candidates, upstream: cmd.upstream });
  if (cmd.upstream !== false) {
    // Newer versions of each tagged base, for this image's platforms; the vault's kept tag lists while fresh.
    const check = new NewerVersionsCheck({
      vault,
      insecure: opts.insecure,
      credentials: dockerConfigCredentials(),
      timeouts: timeoutsOf(opts),
      persist: false,
    });
    const found = await newerForChains(report.platforms, check);
    for (const p of report.platforms)
      for (const b of p.chain) {
        const n = found.get(newerKey(b.reference) ?? '');
        if (n && b.method !== 'previous-push') b.newer = n;
      }
  }
  out(opts.json, report, () => formatBaseReport(report));
}

/** True when the first component of `spec` is a registry host (`host.name/…`, `host:port/…`, `localhost/…`). */
export function isRegistryReference(spec: string): boolean {
  const slash = spec.indexOf('/');
  if (slash < 0) return false;
  const first = spec.slice(0, slash);
  return first === 'localhost' || first.includes('.') || first.includes(':');
}

/** Builds the report: the vault's record for a vault image (detected from vault content if it has none), or live. */
export async function baseReport(
  vault: Vault,
  registries: Registries,
  spec: string,
  options: { candidates?: CandidateBases; upstream?: boolean } = {},
): Promise<BaseReport> {
  const source = new VaultFirstSource(vault, new RegistrySource(registries));
  let record: BaseRecord | undefined;
  let image: Reference;
  let kind: 'vault' | 'live';
  if (isRegistryReference(spec)) {
    const ref = Reference.parse(spec);
    const desc = await registries
      .get(ref.registry)
      .repository(ref.repository)
      .resolve(ref.reference ?? 'latest');
    image = ref.withDigest(desc.digest);
    kind = 'live';
  } else {
    const { repository, tag, digest } = parseVaultRef(spec);
    const pinned = digest ?? (await vault.resolveTag(repository, tag ?? 'latest')).descriptor.digest;
    record = baseRecordOf(await vault.image(repository, pinned));
    // The registry part is never contacted for the image itself: its content is read from the vault by digest.
    image = Reference.of('vault.invalid', repository, pinned);
    kind = record ? 'vault' : 'live';
  }
  record ??= await detectBase(source, image, { candidates: options.candidates });
  const heads = new Map<string, Promise<string>>();
  const upstream = async (b: BaseRef): Promise<UpstreamTagStatus | undefined> => {
    if (options.upstream === false || b.method === 'previous-push' || !b.reference) return undefined;
    const recorded = b.indexDigest ?? b.manifestDigest;
    let ref: Reference;
    try {
      ref = Reference.parse(b.reference);
    } catch {
      return undefined;
    }
    if (!ref.tag) return undefined;
    let head = heads.get(ref.toString());
    if (!head) {
      head = registries
        .get(ref.registry)
        .repository(ref.repository)
        .resolve(ref.tag)
        .then((d) => d.digest);
      heads.set(ref.toString(), head);
    }
    try {
      const digest = await head;
      return { digest, recorded, moved: digest !== recorded };
    } catch (e) {
      return { recorded, error: (e as Error).message };
    }
  };
  const platforms: BaseReport['platforms'] = [];
  for (const p of record.platforms) {
    const chain: BaseEntryReport[] = [];
    for (const b of p.chain) {
      const u = await upstream(b);
      chain.push(u ? { ...b, upstream: u } : b);
    }
    platforms.push({ ...p, chain });
  }
  const name = kind === 'live' && isRegistryReference(spec) ? Reference.parse(spec).toString() : spec;
  return { image: name, digest: image.digest!, source: kind, detectedAt: record.detectedAt, platforms };
}

const short = (digest: string) => (digest ? `${digest.slice(0, 19)}…` : '(no digest)');

export function formatBaseReport(r: BaseReport): string {
  const lines = [
    `${r.image} (${short(r.digest)}), ${r.source === 'vault' ? 'recorded' : 'detected'} ${r.detectedAt}`,
  ];
  for (const p of r.platforms) {
    lines.push(`  ${p.platform} ${short(p.manifestDigest)}`);
    if (p.chain.length === 0) lines.push('    no base found');
    p.chain.forEach((b, depth) => {
      const name = b.reference ?? b.repository ?? '(unnamed)';
      const how = `${b.method}${b.evidence ? ` (${b.evidence})` : ''}`;
      lines.push(
        `    ${'  '.repeat(depth)}on ${name} ${short(b.manifestDigest)}: ${b.layers} layers, ${how}, ${b.verified ? 'verified' : 'NOT verified'}`,
      );
      const u = b.upstream;
      if (u) {
        const state = u.error
          ? `upstream not checked: ${u.error}`
          : u.moved
            ? `upstream MOVED: ${b.reference} now ${short(u.digest!)} (was ${short(u.recorded)})`
            : 'upstream unchanged';
        lines.push(`    ${'  '.repeat(depth)}  ${state}`);
      }
      const n = b.newer;
      if (n && (n.newer.length > 0 || n.status === 'failed' || n.status === 'deferred'))
        lines.push(
          `    ${'  '.repeat(depth)}  ${n.newer.length > 0 ? newerLine(n.newer) : `versions not compared: ${n.reason ?? n.status}`}${n.current ? ` (${b.reference} is ${n.current} now)` : ''}`,
        );
    });
    for (const x of p.rejected ?? [])
      lines.push(
        `    rejected: ${x.reference ?? x.repository ?? '?'} from ${x.evidence ?? x.method}: ${x.reason ?? 'not verified'}`,
      );
  }
  return lines.join('\n');
}

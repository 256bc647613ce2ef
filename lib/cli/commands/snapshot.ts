import type { BuildDrift } from '../../drift/build-drift';
import type { Reference } from '../../oci';
import { redactSecrets } from '../../registry';
import { Snapshotter, snapshotImage, type SkippedName, type SnapshotResult } from '../../services';
import { isEcrHost, progressOf, type CommandContext } from '../context';
import { ExitCode } from '../exit';
import { mib, out } from './format';

export interface SnapshotCommandOptions {
  allTags: boolean;
  candidate: string[];
  base: boolean;
}

/** `imagevault snapshot REF...`: copy each image into the vault, record its provenance, report build drift. */
export async function snapshotCommand(
  ctx: CommandContext,
  refs: string[],
  cmd: SnapshotCommandOptions,
): Promise<void> {
  const opts = ctx.opts();
  const registries = ctx.registries();
  const progress = progressOf(opts);
  const vault = await ctx.vault();
  // What killed runs left among the blobs is cleared (only what is past the grace period, so never a write of this
  // run or of a concurrent one). The sweep walks every blob's directory: it runs while the images copy, not after.
  const sweeping = vault.leftovers({ remove: true, prefix: 'blobs/' });
  sweeping.catch(() => undefined);
  const snap = new Snapshotter(vault, registries);
  const drifts: BuildDrift[] = [];
  const targets: Reference[] = [];
  const skipped: SkippedName[] = [];
  for (const r of refs) {
    const expansion = await snap.expand(r, cmd.allTags);
    targets.push(...expansion.targets);
    skipped.push(...expansion.skipped);
  }
  for (const s of skipped) progress.done(s.name, `${s.registry}/${s.name}: SKIPPED: ${s.reason}`, true);
  if (targets.length === 0 && skipped.length === 0)
    throw new Error(`nothing to snapshot: ${refs.join(' ')} names no image`);
  const results: SnapshotResult[] = [];
  const failures: { reference: string; error: string }[] = [];
  for (const ref of targets) {
    const label = ref.toString();
    try {
      const {
        drift,
        provenance: _provenance,
        ...r
      } = await snapshotImage(
        {
          vault,
          registries,
          concurrency: opts.concurrency,
          ...(cmd.base && { bases: { candidates: { '': cmd.candidate } } }),
        },
        { reference: ref, onEvent: progress.image(label), cloudTrail: await isEcrHost(ref.registry) },
      );
      results.push(r);
      // A tag that moved onto another digest of the same base is build drift: say so next to the snapshot.
      drifts.push(...drift);
      progress.done(
        label,
        `${label} → ${r.descriptor.digest.slice(0, 19)}…: ${r.copy.blobs.copied} blobs copied (${mib(r.copy.bytes.copied)}), ${r.copy.blobs.skipped} present, ${r.copy.referrers.length} referrers, ${r.copy.seconds.toFixed(1)} s`,
      );
    } catch (e) {
      const reason = redactSecrets((e as Error).message);
      failures.push({ reference: label, error: reason });
      progress.done(label, `${label}: FAILED: ${reason}`, true);
    }
  }
  await vault.writeLayoutIndex();
  const leftovers = await sweeping;
  progress.stop();
  const cleared = leftovers.reduce((n, l) => n + (l.size ?? 0), 0);
  out(
    opts.json,
    {
      store: vault.url,
      snapshots: results,
      failures,
      skipped,
      buildDrift: drifts,
      leftoversRemoved: leftovers,
    },
    () =>
      [
        ...results.map(
          (r) =>
            `${r.reference}\t${r.copy.blobs.copied} copied\t${r.copy.blobs.skipped} skipped\t${r.copy.bytes.copied} bytes\t${r.copy.seconds.toFixed(2)} s`,
        ),
        ...failures.map((f) => `FAILED ${f.reference}: ${f.error}`),
        ...skipped.map((s) => `SKIPPED ${s.registry}/${s.name}: ${s.reason}`),
        ...(failures.length + skipped.length > 0
          ? [
              `${results.length} snapshotted, ${failures.length} failed, ${skipped.length} skipped (names a registry listed that cannot be taken)`,
            ]
          : []),
        ...(leftovers.length > 0
          ? [`removed ${leftovers.length} leftovers of interrupted writes (${mib(cleared)})`]
          : []),
        ...drifts.map(
          (d) =>
            `BUILD DRIFT ${d.repository}:${d.tag} (${d.platform}): base ${d.current.base.reference ?? '?'} was ` +
            `${d.previous.base.manifestDigest.slice(0, 19)}…, now ${d.current.base.manifestDigest.slice(0, 19)}…; ` +
            `base layers changed at ${d.layers.map((c) => c.position).join(', ') || '(none)'}` +
            (d.history.diff.some((l) => l[0] !== ' ')
              ? `\n${d.history.diff
                  .filter((l) => l[0] !== ' ')
                  .map((l) => `    ${l}`)
                  .join('\n')}`
              : ''),
        ),
      ].join('\n'),
  );
  if (failures.length + skipped.length > 0) process.exitCode = ExitCode.Failed;
}

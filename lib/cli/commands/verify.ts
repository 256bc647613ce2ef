import { validateRepository } from '../../oci';
import { verifyVault } from '../../services';
import type { CommandContext } from '../context';
import { ExitCode } from '../exit';
import { mib, out } from './format';

/**
 * `imagevault verify [REPO]`: re-hash the vault and walk every image; exit 4 on missing or corrupt content. Also
 * reports what interrupted writes left behind, and with --repair removes it.
 */
export async function verifyCommand(
  ctx: CommandContext,
  repository: string | undefined,
  cmd: { repair: boolean },
): Promise<void> {
  const opts = ctx.opts();
  if (repository) validateRepository(repository);
  const vault = await ctx.vault();
  const r = await verifyVault(vault, { repository, repair: cmd.repair });
  const leftoverBytes = r.leftovers.reduce((n, l) => n + (l.size ?? 0), 0);
  out(opts.json, r, () =>
    [
      `${r.store}${repository ? ` (${repository})` : ''}: ${r.images} images, ${r.blobs.checked} blobs (${mib(r.blobs.bytes)}) re-hashed in ${r.seconds.toFixed(1)} s`,
      ...r.missing.map((p) => `MISSING ${p.digest}${p.image ? ` (needed by ${p.image})` : ''}: ${p.reason}`),
      ...r.corrupt.map((p) => `CORRUPT ${p.digest}${p.image ? ` (needed by ${p.image})` : ''}: ${p.reason}`),
      ...r.leftovers.map(
        (l) =>
          `${r.repaired ? 'REMOVED' : 'LEFTOVER'} ${l.key}${l.size === undefined ? '' : ` (${mib(l.size)})`}: ` +
          `left by an interrupted write, untouched since ${l.since.toISOString()}`,
      ),
      ...(r.leftovers.length === 0
        ? []
        : [
            r.repaired
              ? `removed ${r.leftovers.length} leftovers of interrupted writes (${mib(leftoverBytes)})`
              : `${r.leftovers.length} leftovers of interrupted writes (${mib(leftoverBytes)}): verify --repair removes them`,
          ]),
      r.missing.length + r.corrupt.length === 0
        ? 'OK: everything present and verified'
        : `${r.missing.length} missing, ${r.corrupt.length} corrupt`,
    ].join('\n'),
  );
  if (r.missing.length + r.corrupt.length > 0) process.exitCode = ExitCode.VerifyFailed;
}

import type { CommandContext } from '../context';
import { UsageError } from '../exit';
import { parseVaultRef } from '../vault-ref';
import { out } from './format';

/** `imagevault history REPO:TAG`: every digest the tag pointed to, oldest first. */
export async function historyCommand(ctx: CommandContext, spec: string): Promise<void> {
  const opts = ctx.opts();
  const ref = parseVaultRef(spec);
  if (!ref.tag) throw new UsageError(`history needs REPO:TAG, got "${spec}"`);
  const vault = await ctx.vault();
  const entries = await vault.history(ref.repository, ref.tag);
  out(opts.json, { repository: ref.repository, tag: ref.tag, history: entries }, () =>
    entries.length === 0
      ? `${ref.repository}:${ref.tag} has no history in ${vault.url}`
      : entries
          .map(
            (e) =>
              `${e.observedAt}\t${e.action}\t${e.descriptor.digest}\t${e.source.kind}${e.source.detail ? ` ${e.source.detail}` : ''}`,
          )
          .join('\n'),
  );
}

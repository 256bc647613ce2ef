import { Forgets, forgetOf, type ForgetRecord } from '../../content';
import type { CommandContext } from '../context';
import { UsageError } from '../exit';
import { parseVaultRef } from '../vault-ref';
import { out } from './format';

/** `imagevault history REPO:TAG`: every digest the tag pointed to, oldest first; forgotten pushes say so. */
export async function historyCommand(ctx: CommandContext, spec: string): Promise<void> {
  const opts = ctx.opts();
  const ref = parseVaultRef(spec);
  if (!ref.tag) throw new UsageError(`history needs REPO:TAG, got "${spec}"`);
  const vault = await ctx.vault();
  const entries = await vault.history(ref.repository, ref.tag);
  // Retention appends forget records and erases nothing: a forgotten push stays in the history, marked.
  const forgets = await new Forgets(vault.store).newest(ref.repository);
  const forgotten = new Map<string, ForgetRecord | undefined>();
  for (const e of entries) {
    const d = e.descriptor.digest;
    if (forgotten.has(d) || forgets.size === 0) continue;
    const record = await vault.image(ref.repository, d);
    forgotten.set(d, record && forgetOf(record, forgets));
  }
  const marked = entries.map((e) => {
    const f = forgotten.get(e.descriptor.digest);
    return f && e.recordedAt <= f.forgottenAt ? { ...e, forgotten: f } : e;
  });
  out(opts.json, { repository: ref.repository, tag: ref.tag, history: marked }, () =>
    marked.length === 0
      ? `${ref.repository}:${ref.tag} has no history in ${vault.url}`
      : marked
          .map(
            (e) =>
              `${e.observedAt}\t${e.action}\t${e.descriptor.digest}\t${e.source.kind}${e.source.detail ? ` ${e.source.detail}` : ''}` +
              ('forgotten' in e
                ? `\tFORGOTTEN ${e.forgotten.forgottenAt} by ${e.forgotten.by} (retention)`
                : ''),
          )
          .join('\n'),
  );
}

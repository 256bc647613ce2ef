import { Forgets, forgetOf } from '../../content';
import { validateRepository } from '../../oci';
import type { CommandContext } from '../context';
import { mib, out } from './format';

/** `imagevault list [REPO]`: the vault's repositories, or one repository's tags and images. */
export async function listCommand(ctx: CommandContext, repository?: string): Promise<void> {
  const opts = ctx.opts();
  const vault = await ctx.vault();
  if (!repository) {
    const repos = await vault.repositories();
    out(
      opts.json,
      { store: vault.url, repositories: repos },
      () => repos.join('\n') || '(the vault is empty)',
    );
    return;
  }
  validateRepository(repository);
  const tags: { tag: string; digest: string; action: string; observedAt: string }[] = [];
  for (const tag of await vault.tags(repository)) {
    const last = await vault.latest(repository, tag);
    if (last)
      tags.push({
        tag,
        digest: last.descriptor.digest,
        action: last.action,
        observedAt: last.observedAt,
      });
  }
  // Retention forgets without erasing: a forgotten image is still listed, marked, since gc may delete its content.
  const forgets = await new Forgets(vault.store).newest(repository);
  const images = (await vault.images(repository)).map((i) => {
    const forgotten = forgetOf(i, forgets);
    return {
      digest: i.descriptor.digest,
      mediaType: i.descriptor.mediaType,
      bytes: i.bytes,
      referrers: i.referrers.length,
      lastSnapshotAt: i.lastSnapshotAt,
      ...(forgotten && { forgotten: { at: forgotten.forgottenAt, reason: forgotten.reason } }),
    };
  });
  out(opts.json, { store: vault.url, repository, tags, images }, () =>
    [
      ...tags.map(
        (t) =>
          `${repository}:${t.tag}\t${t.digest}\t${t.observedAt}${t.action === 'delete' ? '\t(deleted)' : ''}`,
      ),
      ...images.map(
        (i) =>
          `${repository}@${i.digest}\t${mib(i.bytes)}\t${i.referrers} referrers\tsnapshot ${i.lastSnapshotAt}${i.forgotten ? `\tFORGOTTEN ${i.forgotten.at} (${i.forgotten.reason})` : ''}`,
      ),
    ].join('\n'),
  );
}

import { readFile } from 'node:fs/promises';
import { VaultInUse } from '../../content';
import { applyRetention, planRetention, type RetentionPlan } from '../../services/retention';
import { parsePolicy, PolicyError, type RetentionPolicy } from '../../services/retention-policy';
import type { CommandContext } from '../context';
import { UsageError } from '../exit';
import { mib, out } from './format';
import { whoAmI } from './hold';

export interface RetentionCommandOptions {
  policy: string;
  now?: Date;
  by?: string;
}

/** `imagevault retention plan --policy FILE`: what the policy would forget, and what gc would then free. */
export async function retentionPlanCommand(ctx: CommandContext, cmd: RetentionCommandOptions): Promise<void> {
  const opts = ctx.opts();
  const policy = await readPolicy(cmd.policy);
  const vault = await ctx.vault();
  const plan = await planRetention(vault, policy, {
    inUse: new VaultInUse(vault.store, () => cmd.now ?? new Date()),
    now: cmd.now,
  });
  out(opts.json, plan, () => formatPlan(plan, 'would forget'));
}

/** `imagevault retention apply --policy FILE`: forgets what the plan names (records it; deletes nothing). */
export async function retentionApplyCommand(
  ctx: CommandContext,
  cmd: RetentionCommandOptions,
): Promise<void> {
  const opts = ctx.opts();
  const policy = await readPolicy(cmd.policy);
  const vault = await ctx.vault();
  const r = await applyRetention(vault, policy, {
    inUse: new VaultInUse(vault.store, () => cmd.now ?? new Date()),
    now: cmd.now,
    by: cmd.by ?? whoAmI(),
  });
  out(opts.json, r, () =>
    [
      formatPlan(r.plan, 'forgets'),
      ...r.skipped.map((s) => `left alone ${s.image}: ${s.reason}`),
      `forgot ${r.forgotten} images (recorded in the vault; their history stays, marked forgotten). ` +
        '`imagevault gc` deletes the content no kept image needs.',
    ].join('\n'),
  );
}

async function readPolicy(file: string): Promise<RetentionPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${file}: cannot read the retention policy: ${(e as Error).message}`);
  }
  try {
    return parsePolicy(text, file);
  } catch (e) {
    throw e instanceof PolicyError ? new UsageError(e.message) : e;
  }
}

const short = (digest: string) => `${digest.slice(0, 19)}…`;

export function formatPlan(plan: RetentionPlan, verb: string): string {
  const lines = [`retention at ${plan.now} for ${plan.store}`];
  for (const r of plan.repositories) {
    lines.push(
      `${r.repository} (${r.rule === undefined ? 'no rule: untouched' : `rule "${r.rule}"`}): ${r.images} images, keep ${r.kept}, ${verb} ${r.forget}${r.note ? ` — ${r.note}` : ''}`,
    );
    for (const f of plan.forget.filter((x) => x.repository === r.repository))
      lines.push(
        `  forget ${short(f.descriptor.digest)} ${f.tags.map((t) => `:${t}`).join(' ') || '(untagged)'}: ${f.reason}`,
      );
    if (r.rule !== undefined)
      for (const k of plan.kept.filter((x) => x.repository === r.repository))
        lines.push(`  keep   ${short(k.digest)}: ${k.reasons.join('; ')}`);
  }
  if (plan.alreadyForgotten > 0) lines.push(`${plan.alreadyForgotten} images were forgotten by earlier runs`);
  lines.push(
    `frees ${plan.freed.blobs} blobs, ${mib(plan.freed.bytes)} (content only forgotten images need, each blob once; gc deletes it)`,
  );
  if (plan.locked.length > 0) {
    const bytes = plan.locked.reduce((n, l) => n + l.size, 0);
    const last = plan.locked[plan.locked.length - 1];
    lines.push(
      `Object Lock keeps ${plan.locked.length} of them (${mib(bytes)}) until ${plan.locked[0].until}` +
        (last.until !== plan.locked[0].until ? ` … ${last.until}` : '') +
        ': stored and billed until then',
    );
    for (const l of plan.locked)
      lines.push(`  locked ${short(l.digest)} ${mib(l.size)} ${l.mode} until ${l.until}`);
  }
  return lines.join('\n');
}

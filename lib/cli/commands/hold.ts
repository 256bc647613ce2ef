import { hostname, userInfo } from 'node:os';
import type { HoldState } from '../../content';
import { HoldError, HoldService, type HoldRequest } from '../../services/holds';
import type { CommandContext } from '../context';
import { UsageError } from '../exit';
import { parseVaultRef } from '../vault-ref';
import { out } from './format';

export interface HoldCommandOptions {
  reason?: string;
  by?: string;
  list?: boolean;
  all?: boolean;
}

/** `imagevault hold REF --reason …` (or `hold --list`): a legal hold that retention and GC always honour. */
export async function holdCommand(
  ctx: CommandContext,
  spec: string | undefined,
  cmd: HoldCommandOptions,
): Promise<void> {
  const opts = ctx.opts();
  const service = new HoldService(await ctx.vault());
  if (cmd.list || !spec) {
    if (spec) throw new UsageError('hold --list takes no image');
    if (!cmd.list) throw new UsageError('hold needs an image (REPO:TAG or REPO@DIGEST), or --list');
    const states = await service.list({ all: cmd.all });
    out(opts.json, { holds: states }, () => formatHolds(states, cmd.all === true));
    return;
  }
  const { record, changed } = await run(() => service.hold(request(spec, cmd)));
  out(opts.json, { ...record, changed }, () =>
    changed
      ? `held ${record.repository}@${record.digest} (${record.reference}) by ${record.by} at ${record.at}: ${record.reason}`
      : `${record.reference} (${record.digest}) is already on hold since ${record.at} by ${record.by}: ${record.reason}`,
  );
}

/** `imagevault release REF --reason …`: ends a hold; the hold and its release both stay in the record. */
export async function releaseCommand(
  ctx: CommandContext,
  spec: string,
  cmd: HoldCommandOptions,
): Promise<void> {
  const opts = ctx.opts();
  const service = new HoldService(await ctx.vault());
  const record = await run(() => service.release(request(spec, cmd)));
  out(
    opts.json,
    record,
    () =>
      `released ${record.repository}@${record.digest} (${record.reference}) by ${record.by} at ${record.at}: ${record.reason}`,
  );
}

function request(spec: string, cmd: HoldCommandOptions): HoldRequest {
  const ref = parseVaultRef(spec);
  return { ...ref, by: cmd.by ?? whoAmI(), reason: cmd.reason ?? '' };
}

/** Bad input from the service (nothing to release, no reason) is a usage error: exit 2. */
async function run<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw e instanceof HoldError ? new UsageError(e.message) : e;
  }
}

/** Who places a hold, when --by does not say: the local user at this host. */
export function whoAmI(): string {
  let user = process.env.USER ?? '';
  try {
    user ||= userInfo().username;
  } catch {
    user ||= 'unknown';
  }
  return `${user}@${hostname()}`;
}

function formatHolds(states: HoldState[], all: boolean): string {
  if (states.length === 0) return all ? 'no image was ever held' : 'no image is on hold';
  return states
    .flatMap((s) =>
      all
        ? s.records.map(
            (r) => `${r.at}\t${r.action}\t${s.repository}@${s.digest}\t${r.reference}\t${r.by}\t${r.reason}`,
          )
        : [
            `${s.current.at}\t${s.repository}@${s.digest}\t${s.current.reference}\t${s.current.by}\t${s.current.reason}`,
          ],
    )
    .join('\n');
}

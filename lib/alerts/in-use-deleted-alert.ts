import type { AlertImage } from './alert';
import { restoreCommand } from './commands';

/*
 * The deletion guard's alert (lib/services/deletion-guard.ts): an image that runs somewhere is gone from its
 * registry, so the next task start, scale-up or cold start there cannot pull it. Critical whatever was done about
 * it: even restored, a cleanup deleted what runs, and whoever owns that cleanup needs to know.
 */

/** One workload the deleted image runs in, as the in-use inventory saw it. */
export interface InUsePlacement {
  /** The inventory's label: `ecs:eu-west-1/prod/api`, `lambda:eu-west-1/resize`, `kubernetes:eks/shop/Deployment/api`. */
  readonly where: string;
  /** Tasks or pods seen running it (the inventory keeps a sample); empty for a function. */
  readonly instances: readonly string[];
  /** When the inventory last saw it there. */
  readonly lastSeen: string;
}

/** What the guard did about the deleted image. */
export type GuardRestore =
  /** autoRestoreInUse is off: the alert gives the command. */
  | { readonly status: 'off' }
  /** Nothing to restore from: the vault never snapshotted this digest. */
  | { readonly status: 'not-in-vault' }
  | {
      readonly status: 'restored';
      /** The digest the registry reports for what was pushed back: the deleted one. */
      readonly digest: string;
      /** Each tag the deleted image had: set again, or why not (one line). */
      readonly tags: readonly {
        readonly name: string;
        readonly restored: boolean;
        readonly reason?: string;
      }[];
    }
  /** One line, no stack trace, credentials removed. */
  | { readonly status: 'failed'; readonly reason: string }
  /**
   * Found in the registry again, by digest and with its tags, when the deletion was handled: restored by an earlier
   * delivery of the same event (whose alert may not have gone out) or by someone. Nothing was pushed.
   */
  | { readonly status: 'back' };

/** An image in use was deleted from its registry (seen by its DELETE event, or by reconcile without one). */
export interface InUseDeletedAlert {
  readonly kind: 'in-use-deleted';
  /** The registry and repository it was deleted from, the digest, and the tag the restore sets (if any). */
  readonly image: AlertImage;
  /** Every tag the vault last saw on the digest. */
  readonly tags: readonly string[];
  /** How the deletion was seen: `ecr-event` (with the event id) or `reconcile` (gone without an event). */
  readonly detectedBy: { readonly origin: string; readonly id?: string };
  readonly deletedAt: string;
  /** Every workload it runs in now, as the newest good scan of each source saw it. */
  readonly runningIn: readonly InUsePlacement[];
  /** The vault's snapshot of the digest; none: it cannot be restored from the vault. */
  readonly lastSnapshot?: { readonly digest: string; readonly snapshottedAt: string };
  readonly restore: GuardRestore;
  readonly store: string;
}

/** Subject and text lines of a (bounded) alert; `omitted` counts what formatAlert cut, by path. */
export function inUseDeletedText(
  a: InUseDeletedAlert,
  omitted: ReadonlyMap<string, number>,
): { subject: string; lines: string[]; severity: 'critical' | 'warning' } {
  const img = a.image;
  const name = `${img.registry}/${img.repository}${img.tag ? `:${img.tag}` : ''}`;
  const command = restoreCommand(img.repository, img.digest, img.registry, img.tag, a.store);
  const last = a.lastSnapshot;
  const how =
    a.detectedBy.origin === 'reconcile'
      ? 'found by reconcile (no DELETE event reached the vault)'
      : `ECR event ${a.detectedBy.id ?? ''}`.trim();
  const lines = [
    `An image that is RUNNING was deleted from its registry. Where it runs, the next task start, scale-up or`,
    'cold start cannot pull it.',
    '',
    field('Image', `${img.registry}/${img.repository}@${img.digest}`),
    field('Tags', a.tags.length > 0 ? a.tags.join(', ') : '(none)'),
    field('Deleted', `${a.deletedAt}, ${how}`),
    field(
      'Last snapshot',
      last ? `${last.digest}, snapshotted ${last.snapshottedAt}` : 'NONE - the vault cannot restore it',
    ),
    field('Vault', a.store),
    '',
    'Running in:',
    ...a.runningIn.map(
      (p) =>
        `  ${p.where}${p.instances.length > 0 ? ` (${p.instances.join(', ')})` : ''}, last seen ${p.lastSeen}`,
    ),
    ...more(omitted, 'runningIn', 'workloads', `imagevault inventory --store ${a.store}`),
    '',
    ...restoreLines(a, name, command),
  ];
  const what =
    a.restore.status === 'restored'
      ? 'IN USE image DELETED, restored:'
      : a.restore.status === 'back'
        ? 'IN USE image DELETED, back:'
        : 'IN USE image DELETED:';
  const short = img.tag ? `${img.repository}:${img.tag}` : `${img.repository}@untagged`;
  const digest = ` (${img.digest.slice(0, img.digest.indexOf(':') + 13)}...)`;
  const head = `[imagevault] ${what} `;
  const room = 99 - head.length - digest.length;
  const fitted = short.length <= room ? short : `...${short.slice(short.length - room + 3)}`;
  // Critical while it is gone or was just restored; a repeat that finds it back is for the record.
  const severity = a.restore.status === 'back' ? 'warning' : 'critical';
  return { subject: `${head}${fitted}${digest}`, lines, severity };
}

function restoreLines(a: InUseDeletedAlert, name: string, command: string): string[] {
  const r = a.restore;
  switch (r.status) {
    case 'restored': {
      return [
        `What was done (autoRestoreInUse): the image was pushed back from the vault, bit for bit, and the registry`,
        `reports the same digest: ${r.digest}.`,
        ...(r.tags.length === 0 ? ['No tag to restore: the image had none.'] : []),
        ...r.tags.map((t) =>
          t.restored
            ? `Tag ${t.name}: set again.`
            : `Tag ${t.name}: NOT restored: ${t.reason ?? 'no reason given'}`,
        ),
        '',
        'Next step: find out who deleted it (CloudTrail: BatchDeleteImage) and keep it from happening again',
        '(an ECR lifecycle rule, a cleanup script).',
      ];
    }
    case 'failed':
      return [
        `What was done (autoRestoreInUse): the restore FAILED: ${r.reason}`,
        '',
        `Next step: restore it by hand into ${name}:`,
        `  ${command}`,
      ];
    case 'not-in-vault':
      return [
        'Next step: the vault never snapshotted this digest and cannot restore it. Rebuild the image or find',
        'another copy, before the workloads above restart.',
      ];
    case 'back':
      return [
        'It is in the registry again, by digest and with its tags: restored by an earlier delivery of this event, or by',
        'someone else. Nothing was pushed now.',
        '',
        'Next step: find out who deleted it (CloudTrail: BatchDeleteImage) and keep it from happening again.',
      ];
    case 'off':
      return [
        `Next step: restore it now (autoRestoreInUse is off, so nothing was pushed back):`,
        `  ${command}`,
        '(the same command with the replica bucket works from the replica region)',
      ];
  }
}

function field(name: string, value: string): string {
  return `${`${name}:`.padEnd(15)}${value}`;
}

function more(omitted: ReadonlyMap<string, number>, path: string, what: string, how: string): string[] {
  const n = omitted.get(path);
  return n
    ? [`  ... and ${n.toLocaleString('en-US')} more ${what}, not listed here; all of them: ${how}`]
    : [];
}

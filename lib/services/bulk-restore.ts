import type { CopyEvent } from '../copy';
import { Forgets, forgetOf, imageId, NotInVaultError, type TagObservation, type Vault } from '../content';
import { InvalidReferenceError, Reference, validateRepository, type Descriptor } from '../oci';
import { DEFAULT_PARALLEL } from './defaults';
import type { RestoreResult, Restorer } from './restore';

export { DEFAULT_PARALLEL };

/** History files read at once while planning: enough to hide S3 latency, few enough to stay polite. */
const PLAN_CONCURRENCY = 16;

export interface BulkRestoreRequest {
  /**
   * The destination registry, `host[:port]`, optionally with a namespace: `host/restored` puts vault repository
   * `team/app` at `host/restored/team/app`.
   */
  readonly to: string;
  /**
   * Only repositories under this path: `team` (or `team/`) means `team` and `team/…`; ending in `*`, a plain
   * string prefix (`team/ap*`). @default every repository in the vault
   */
  readonly prefix?: string;
  /** Each tag as it was at this time; tags first pushed later are left out. @default now (each tag's latest push) */
  readonly at?: Date;
  /** Images restored at once. @default DEFAULT_PARALLEL */
  readonly parallel?: number;
  readonly dryRun?: boolean;
  /** Move destination tags that point at other images, where the repository allows it. @default false */
  readonly force?: boolean;
}

/** One `repository:tag` of the vault and where it goes. */
export interface BulkImage {
  /** `repository:tag` in the vault. */
  readonly image: string;
  readonly repository: string;
  readonly tag: string;
  readonly descriptor: Descriptor;
  /** When the push being restored was observed. */
  readonly observedAt: string;
  /** The destination, `registry/[namespace/]repository:tag`. */
  readonly destination: string;
  /** Set when the tag's last observation (at the time asked) is a delete: the push before it is restored. */
  readonly deletedAt?: string;
}

export type BulkOutcome =
  | { readonly status: 'restored'; readonly result: RestoreResult }
  | { readonly status: 'skipped'; readonly result: RestoreResult }
  | { readonly status: 'failed'; readonly error: string };

/** Progress of a bulk restore, for a display to adapt: the plan, then each image's start, transfers and end. */
export type BulkEvent =
  | { readonly type: 'plan'; readonly images: readonly BulkImage[] }
  | { readonly type: 'start'; readonly image: BulkImage }
  | { readonly type: 'copy'; readonly image: BulkImage; readonly event: CopyEvent }
  | {
      readonly type: 'done';
      readonly image: BulkImage;
      readonly outcome: BulkOutcome;
      /** Images finished so far (this one included), of `total`. */
      readonly done: number;
      readonly total: number;
    };

export interface BulkRestoreOptions {
  readonly onEvent?: (event: BulkEvent) => void;
}

export interface BulkImageReport {
  image: string;
  destination: string;
  digest: string;
  observedAt: string;
  deletedAt?: string;
}

export interface BulkRestoreSummary {
  store: string;
  destination: string;
  prefix?: string;
  at?: string;
  dryRun: boolean;
  images: { total: number; restored: number; skipped: number; failed: number };
  /** Pushed (in a dry run: would be), with what was copied and what happened to the tag. */
  restored: (BulkImageReport & {
    tag: string;
    blobs: { copied: number; skipped: number; mounted: number };
    bytes: number;
  })[];
  /** The destination tag already pointed at the image: nothing done. */
  skipped: BulkImageReport[];
  failed: (Partial<BulkImageReport> & { image: string; error: string })[];
  /** Images whose tag's last observation is a delete, restored from the push before it (also listed above). */
  deleted: BulkImageReport[];
  /** Tags whose first push is after `at`: not restored. */
  notYetPushed: string[];
  /** Repositories the destination's control plane created (ECR). */
  repositoriesCreated: string[];
  blobs: { copied: number; skipped: number; mounted: number };
  bytes: { copied: number; skipped: number };
  seconds: number;
}

/**
 * Bulk restore: every repository:tag of the vault (or of a prefix), as it was at a time, into one registry — the
 * whole lost registry. Images go `parallel` at a time through one Restorer, so a layer shared by many images is
 * uploaded once and mounted into the others. Resumable: an image whose destination tag already points at the
 * right digest costs one HEAD and is skipped, and what is copied skips blobs the destination has.
 *
 * Images of one repository with the same digest under several tags go one after the other, so the second finds
 * the graph there and only sets its tag.
 */
export class BulkRestorer {
  constructor(
    private readonly vault: Vault,
    private readonly restorer: Restorer,
    private readonly options: BulkRestoreOptions = {},
  ) {}

  /** The images a bulk restore would restore, in order, without touching the destination. */
  async plan(request: Pick<BulkRestoreRequest, 'to' | 'prefix' | 'at'>): Promise<{
    images: BulkImage[];
    notYetPushed: string[];
    failed: { image: string; error: string }[];
  }> {
    const target = parseDestination(request.to);
    const match = prefixMatcher(request.prefix);
    const repositories = (await this.vault.repositories()).filter(match);
    if (repositories.length === 0) {
      throw new NotInVaultError(
        request.prefix
          ? `nothing to restore: no repository of ${this.vault.url} is under "${request.prefix}" (a path, like team or team/app; team/ap* for a plain prefix)`
          : `nothing to restore: ${this.vault.url} holds no repository`,
      );
    }
    const when = request.at?.toISOString();
    const jobs: { repository: string; tag: string }[] = [];
    for (const repository of repositories) {
      for (const tag of await this.vault.tags(repository)) jobs.push({ repository, tag });
    }
    // Retention's forgets, read once: an image it forgot may have lost its content to gc, so it is named as such
    // here rather than failing later on a missing blob.
    const forgets = await new Forgets(this.vault.store).newest();
    const images: BulkImage[] = [];
    const notYetPushed: string[] = [];
    const failed: { image: string; error: string }[] = [];
    await forEachLimited(jobs, PLAN_CONCURRENCY, async ({ repository, tag }) => {
      const image = `${repository}:${tag}`;
      try {
        const history = await this.vault.history(repository, tag);
        const seen = when ? history.filter((o) => o.observedAt <= when) : history;
        const push = lastPush(seen);
        if (!push) {
          if (seen.length === 0) notYetPushed.push(image);
          else failed.push({ image, error: `${image} has only delete observations in ${this.vault.url}` });
          return;
        }
        const digest = push.descriptor.digest;
        if (forgets.has(imageId(repository, digest))) {
          const record = await this.vault.image(repository, digest);
          const forgotten = record && forgetOf(record, forgets);
          if (forgotten) {
            failed.push({
              image,
              error: `${image}${when ? ` at ${when}` : ''} is ${repository}@${digest}, forgotten by retention at ${forgotten.forgottenAt} (${forgotten.reason}); gc may have deleted its content`,
            });
            return;
          }
        }
        const last = seen[seen.length - 1];
        images.push({
          image,
          repository,
          tag,
          descriptor: push.descriptor,
          observedAt: push.observedAt,
          destination: target(repository, tag).toString(),
          ...(last.action === 'delete' ? { deletedAt: last.observedAt } : {}),
        });
      } catch (e) {
        failed.push({ image, error: (e as Error).message });
      }
    });
    const byName = (a: { image: string }, b: { image: string }) => (a.image < b.image ? -1 : 1);
    return { images: images.sort(byName), notYetPushed: notYetPushed.sort(), failed: failed.sort(byName) };
  }

  async restore(request: BulkRestoreRequest): Promise<BulkRestoreSummary> {
    const started = process.hrtime.bigint();
    const parallel = request.parallel ?? DEFAULT_PARALLEL;
    if (!Number.isInteger(parallel) || parallel < 1) {
      throw new TypeError(`parallel must be a positive whole number, got ${parallel}`);
    }
    const plan = await this.plan(request);
    const emit = (e: BulkEvent) => this.options.onEvent?.(e);
    emit({ type: 'plan', images: plan.images });

    const summary: BulkRestoreSummary = {
      store: this.vault.url,
      destination: request.to,
      ...(request.prefix !== undefined ? { prefix: request.prefix } : {}),
      ...(request.at ? { at: request.at.toISOString() } : {}),
      dryRun: request.dryRun ?? false,
      images: { total: plan.images.length + plan.failed.length, restored: 0, skipped: 0, failed: 0 },
      restored: [],
      skipped: [],
      failed: [...plan.failed],
      deleted: [],
      notYetPushed: plan.notYetPushed,
      repositoriesCreated: [],
      blobs: { copied: 0, skipped: 0, mounted: 0 },
      bytes: { copied: 0, skipped: 0 },
      seconds: 0,
    };
    const total = plan.images.length;
    let done = 0;
    const created = new Set<string>();

    const one = async (image: BulkImage): Promise<void> => {
      emit({ type: 'start', image });
      const report: BulkImageReport = {
        image: image.image,
        destination: image.destination,
        digest: image.descriptor.digest,
        observedAt: image.observedAt,
        ...(image.deletedAt ? { deletedAt: image.deletedAt } : {}),
      };
      let outcome: BulkOutcome;
      try {
        const to = Reference.parse(image.destination);
        const result = await this.restorer.restore(
          {
            repository: image.repository,
            tag: image.tag,
            resolved: image.descriptor,
            to,
            dryRun: request.dryRun,
            force: request.force,
            skipWhenTagged: true,
          },
          (event) => emit({ type: 'copy', image, event }),
        );
        if (result.repository?.created && !created.has(to.name)) {
          created.add(to.name);
          summary.repositoriesCreated.push(to.name);
        }
        if (result.skipped) {
          summary.skipped.push(report);
          outcome = { status: 'skipped', result };
        } else {
          const c = result.copy;
          summary.restored.push({
            ...report,
            tag: result.tag?.action ?? 'set',
            blobs: { ...c.blobs },
            bytes: c.bytes.copied,
          });
          summary.blobs.copied += c.blobs.copied;
          summary.blobs.skipped += c.blobs.skipped;
          summary.blobs.mounted += c.blobs.mounted;
          summary.bytes.copied += c.bytes.copied;
          summary.bytes.skipped += c.bytes.skipped;
          outcome = { status: 'restored', result };
        }
        if (image.deletedAt) summary.deleted.push(report);
      } catch (e) {
        const error = (e as Error).message;
        summary.failed.push({ ...report, error });
        outcome = { status: 'failed', error };
      }
      done++;
      emit({ type: 'done', image, outcome, done, total });
    };

    // Tags of one repository that name the same digest go in sequence: the first copies, the others only tag.
    const groups = new Map<string, BulkImage[]>();
    for (const image of plan.images) {
      const key = `${image.repository}@${image.descriptor.digest}`;
      groups.set(key, [...(groups.get(key) ?? []), image]);
    }
    await forEachLimited([...groups.values()], parallel, async (group) => {
      for (const image of group) await one(image);
    });

    const byName = (a: { image: string }, b: { image: string }) => (a.image < b.image ? -1 : 1);
    summary.restored.sort(byName);
    summary.skipped.sort(byName);
    summary.failed.sort(byName);
    summary.deleted.sort(byName);
    summary.repositoriesCreated.sort();
    summary.images.restored = summary.restored.length;
    summary.images.skipped = summary.skipped.length;
    summary.images.failed = summary.failed.length;
    summary.seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return summary;
  }
}

function lastPush(history: readonly TagObservation[]): TagObservation | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i].action === 'push') return history[i];
  return undefined;
}

/** A registry host as the CLI and Reference take it: with a dot or a port, or localhost. */
const REGISTRY_HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/;

/**
 * `host[:port][/namespace]` → where a vault repository:tag goes. Checked once here, so a bad destination fails
 * before the first image rather than as many times as there are images.
 */
function parseDestination(to: string): (repository: string, tag: string) => Reference {
  const trimmed = to.replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  const registry = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const namespace = slash < 0 ? '' : trimmed.slice(slash + 1);
  const bad = (why: string) =>
    new InvalidReferenceError(
      `invalid bulk restore destination "${to}": ${why}; expected REGISTRY[/NAMESPACE] without tag or digest, ` +
        'e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com',
    );
  if (!REGISTRY_HOST.test(registry) || !(/[.:]/.test(registry) || registry === 'localhost')) {
    throw bad(`"${registry}" is not a registry host`);
  }
  if (namespace) {
    try {
      validateRepository(namespace);
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  return (repository, tag) =>
    Reference.of(registry, namespace ? `${namespace}/${repository}` : repository, tag);
}

function prefixMatcher(prefix: string | undefined): (repository: string) => boolean {
  if (prefix === undefined || prefix === '' || prefix === '*' || prefix === '/') return () => true;
  if (prefix.endsWith('*')) {
    const stem = prefix.slice(0, -1);
    return (r) => r.startsWith(stem);
  }
  const path = prefix.replace(/\/+$/, '');
  validateRepository(path);
  return (r) => r === path || r.startsWith(`${path}/`);
}

/** Runs `fn` over `items`, at most `limit` at once; rejects only if `fn` does (it catches its own errors here). */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

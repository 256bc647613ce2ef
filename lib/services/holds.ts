import { Holds, type HoldRecord, type HoldState, type Vault } from '../content';

/** A hold or release that cannot be done as asked (nothing to release, a reason missing): bad input. */
export class HoldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HoldError';
  }
}

export interface HoldRequest {
  repository: string;
  /** A tag: held is the image it points at in the vault now (its newest push). */
  tag?: string;
  digest?: string;
  by: string;
  reason: string;
}

/** Legal hold and release of vault images. A hold names one image (a digest): a tag is resolved when held. */
export class HoldService {
  readonly holds: Holds;

  constructor(private readonly vault: Vault) {
    this.holds = new Holds(vault.store);
  }

  /** Places a hold. Holding an image held already records nothing and says so (`changed: false`). */
  async hold(request: HoldRequest): Promise<{ record: HoldRecord; changed: boolean }> {
    const { digest, reference } = await this.resolve(request);
    const reason = reasonOf(request, reference);
    const state = await this.holds.state(request.repository, digest);
    if (state?.held) return { record: state.current, changed: false };
    const record = await this.holds.record({
      action: 'hold',
      repository: request.repository,
      digest,
      reference,
      by: request.by,
      reason,
    });
    return { record, changed: true };
  }

  /** Releases a hold; an image not held now is refused (a release must end a hold). */
  async release(request: HoldRequest): Promise<HoldRecord> {
    const { digest, reference } = await this.resolve(request);
    const reason = reasonOf(request, reference);
    const state = await this.holds.state(request.repository, digest);
    if (!state?.held)
      throw new HoldError(`${reference}: not on hold in ${this.vault.url} (${digest}), nothing to release`);
    return this.holds.record({
      action: 'release',
      repository: request.repository,
      digest,
      reference,
      by: request.by,
      reason,
    });
  }

  list(options: { all?: boolean } = {}): Promise<HoldState[]> {
    return this.holds.list({ held: !options.all });
  }

  private async resolve(request: HoldRequest): Promise<{ digest: string; reference: string }> {
    if (request.digest) {
      await this.vault.resolveDigest(request.repository, request.digest);
      return { digest: request.digest, reference: `${request.repository}@${request.digest}` };
    }
    const tag = request.tag ?? 'latest';
    const push = await this.vault.resolveTag(request.repository, tag);
    return { digest: push.descriptor.digest, reference: `${request.repository}:${tag}` };
  }
}

function reasonOf(request: HoldRequest, reference: string): string {
  const reason = request.reason.trim();
  if (!reason) throw new HoldError(`${reference}: a hold or release needs --reason (who asked, and why)`);
  return reason;
}

import type { Resolver, TagObservation, Vault } from '../content';

/*
 * Recording what a tag pointed at: the one place that decides whether an observation is new. Both snapshot paths
 * (the CLI's and the snapshot queue's) and the queue's deletes record through here.
 */

/** An observation to append, as Vault.recordTag takes it. */
export type ObservationInit = Omit<TagObservation, 'recordedAt'>;

/**
 * Appends `observation` to its tag's history unless the history already says it; returns the entry appended, or
 * undefined when it added nothing.
 *
 * - From an event (its source has an `id`): once per event and action. A second delivery of the same event finds
 *   its own entry and appends nothing, while a new event of an unchanged tag is an observation of its own.
 * - Otherwise (a snapshot the CLI asked for): a push is not appended when the entry it follows in time already says
 *   a push of the same digest (a re-run of an unchanged tag). The entry compared with is the one before
 *   `observedAt`, not the newest: a snapshot that resolved the tag later may have recorded first, and comparing with
 *   it would hide that the tag pointed here in between.
 *
 * `known`: the tag's history when the caller has just read it.
 */
export async function recordObservation(
  vault: Vault,
  observation: ObservationInit,
  known?: readonly TagObservation[],
): Promise<TagObservation | undefined> {
  const { repository, tag, action, source } = observation;
  if (source.id !== undefined) {
    const history = known ?? (await vault.history(repository, tag));
    if (
      history.some((o) => o.source.kind === source.kind && o.source.id === source.id && o.action === action)
    )
      return undefined;
  } else if (action === 'push') {
    const last = await vault.latest(repository, tag, { at: new Date(Date.parse(observation.observedAt)) });
    if (last && last.action === 'push' && last.descriptor.digest === observation.descriptor.digest)
      return undefined;
  }
  return vault.recordTag(observation);
}

/**
 * A snapshot that resolved the tag later, saw the digest the history already ended on and so recorded nothing, may
 * have finished before this one: then `recorded`, appended after it, ends the history on a digest the tag had
 * already left (A → B → A: B resolved first and finished last). Nothing in the vault tells, so when `recorded` is
 * the latest entry the tag is read again; if it has moved to an image the vault wholly holds (its record is
 * written), that is recorded as seen now. An image not yet recorded is still being copied by the snapshot that
 * resolved it, which decides only after its record is written and so sees `recorded` as the entry before it.
 * Best effort: the entry already written is true, and a failure here does not fail the snapshot.
 */
export async function followMovedTag(
  vault: Vault,
  repo: Resolver,
  recorded: TagObservation,
): Promise<TagObservation | undefined> {
  const { repository, tag } = recorded;
  try {
    // The registry is asked while the history is read (both after `recorded` was written, which is what the
    // reasoning above needs): the round trip no longer follows the read. Unused when a later entry exists.
    const resolving = repo.resolve(tag);
    resolving.catch(() => undefined);
    const latest = await vault.latest(repository, tag, { action: 'push' });
    if (latest && latest.observedAt > recorded.observedAt) return undefined;
    const now = await resolving;
    if (now.digest === recorded.descriptor.digest) return undefined;
    const held = await vault.image(repository, now.digest);
    if (!held) return undefined;
    return await vault.recordTag({
      repository,
      tag,
      action: 'push',
      descriptor: held.descriptor,
      observedAt: new Date().toISOString(),
      source: {
        kind: recorded.source.kind,
        detail: `read again after recording ${recorded.descriptor.digest}: the tag had moved on`,
      },
    });
  } catch {
    return undefined;
  }
}

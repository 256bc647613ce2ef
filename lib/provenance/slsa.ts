import { SLSA_PROVENANCE_V1 } from '../oci';
import type { BuildPredicate } from './types';

/*
 * The build facts of a SLSA provenance statement, as BuildKit writes it
 * (https://docs.docker.com/build/metadata/attestations/slsa-definitions/):
 *   v0.2: predicate.builder.id, predicate.invocation.configSource {uri, digest, entryPoint},
 *         predicate.metadata {buildInvocationID, buildStartedOn, buildFinishedOn,
 *         "https://mobyproject.org/buildkit@v1#metadata": {vcs: {source, revision}}} (vcs with mode=max)
 *   v1:   predicate.runDetails.builder.id, predicate.runDetails.metadata {invocationID, startedOn, finishedOn,
 *         buildkit_metadata: {vcs}}, predicate.buildDefinition.externalParameters.configSource {uri, digest, path}
 * Other builders' statements of the same predicate types fill the same standard fields.
 */
const BUILDKIT_METADATA_V02 = 'https://mobyproject.org/buildkit@v1#metadata';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The build facts a SLSA provenance statement (v0.2 or v1) states; the members it does not state are absent. */
export function buildFactsOf(statement: unknown): Omit<BuildPredicate, 'status' | 'attestation'> {
  const s = obj(statement);
  const p = obj(s.predicate);
  const v1 = s.predicateType === SLSA_PROVENANCE_V1;
  const run = obj(p.runDetails);
  const builder = obj(v1 ? run.builder : p.builder);
  const metadata = obj(v1 ? run.metadata : p.metadata);
  const config = obj(
    v1 ? obj(obj(p.buildDefinition).externalParameters).configSource : obj(p.invocation).configSource,
  );
  const vcs = obj(obj(v1 ? metadata.buildkit_metadata : metadata[BUILDKIT_METADATA_V02]).vcs);
  const configDigest = obj(config.digest);
  const configUri = str(config.uri);
  const configPath = str(config.path) ?? str(config.entryPoint);
  // A git config source pins the commit (`https://github.com/o/r.git#refs/tags/v1` with digest.sha1) and BuildKit
  // resolved it itself; `vcs` is what the client said about a local context, unverified: a hint, taken second.
  const gitCommit = configUri ? (str(configDigest.sha1) ?? str(configDigest.gitCommit)) : undefined;
  const fromConfig = gitCommit !== undefined;
  const source = fromConfig ? configUri?.replace(/#.*$/, '') : str(vcs.source);
  const revision = fromConfig ? gitCommit : str(vcs.revision);
  const facts = {
    builderId: str(builder.id),
    invocationId: str(v1 ? metadata.invocationID : metadata.buildInvocationID),
    configSource: configUri ?? configPath,
    source,
    revision,
    revisionFrom: revision ? (fromConfig ? ('config-source' as const) : ('vcs-hint' as const)) : undefined,
    startedOn: str(v1 ? metadata.startedOn : metadata.buildStartedOn),
    finishedOn: str(v1 ? metadata.finishedOn : metadata.buildFinishedOn),
  };
  return Object.fromEntries(Object.entries(facts).filter(([, v]) => v !== undefined));
}

/**
 * SLSA provenance statements shaped as BuildKit documents them
 * (https://docs.docker.com/build/metadata/attestations/slsa-definitions/; field values from its examples).
 */
export const RUN = 'https://github.com/docker/buildx/actions/runs/3709599520';
export const GIT = 'https://github.com/moby/buildkit.git#refs/tags/v0.11.0';
export const SHA1 = '4b220de5058abfd01ff619c9d2ff6b09a049bea0';

/** v0.2 as BuildKit writes it for a build from a git context, in GitHub Actions. */
export const slsaV02FromGit = () => ({
  _type: 'https://in-toto.io/Statement/v0.1',
  predicateType: 'https://slsa.dev/provenance/v0.2',
  subject: [{ name: 'pkg:docker/app@latest', digest: { sha256: 'f'.repeat(64) } }],
  predicate: {
    builder: { id: RUN },
    buildType: 'https://mobyproject.org/buildkit@v1',
    invocation: {
      configSource: { uri: GIT, digest: { sha1: SHA1 }, entryPoint: 'Dockerfile' },
      environment: { platform: 'linux/amd64' },
    },
    materials: [
      {
        uri: 'pkg:docker/alpine@3.17?platform=linux%2Famd64',
        digest: { sha256: '8914eb54f968791faf6a8638949e480fef81e697984fba772b3976835194c6d4' },
      },
      { uri: GIT, digest: { sha1: SHA1 } },
    ],
    metadata: {
      buildInvocationID: 'rpv7a389uzil5lqmrgwhijwjz',
      buildStartedOn: '2021-11-17T15:00:00Z',
      buildFinishedOn: '2021-11-17T15:01:00Z',
      completeness: { parameters: true, environment: true, materials: true },
      reproducible: false,
      'https://mobyproject.org/buildkit@v1#metadata': {},
    },
  },
});

/** v1 for a build from a local directory: the client sent vcs:source / vcs:revision. */
export const slsaV1FromLocal = () => ({
  _type: 'https://in-toto.io/Statement/v0.1',
  predicateType: 'https://slsa.dev/provenance/v1',
  subject: [],
  predicate: {
    buildDefinition: {
      buildType: 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md',
      externalParameters: { configSource: { path: 'Dockerfile' }, request: { frontend: 'dockerfile.v0' } },
      resolvedDependencies: [],
    },
    runDetails: {
      builder: { id: RUN },
      metadata: {
        invocationID: 'rpv7a389uzil5lqmrgwhijwjz',
        startedOn: '2021-11-17T15:00:00Z',
        finishedOn: '2021-11-17T15:01:00Z',
        buildkit_metadata: { vcs: { source: 'https://github.com/example/app', revision: 'abc123' } },
      },
    },
  },
});

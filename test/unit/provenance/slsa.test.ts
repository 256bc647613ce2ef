/** Build facts from SLSA provenance statements shaped as BuildKit documents them (./slsa-statements). */
import { buildFactsOf, buildProvenance } from '../../../lib/provenance';
import { attestedIndex, descOf, putImage, tempVault } from '../helpers';
import { GIT, RUN, SHA1, slsaV02FromGit, slsaV1FromLocal } from './slsa-statements';

describe('Function: buildFactsOf', () => {
  it('reads the CI run, the invocation and the git commit BuildKit resolved (v0.2)', () => {
    expect(buildFactsOf(slsaV02FromGit())).toEqual({
      builderId: RUN,
      invocationId: 'rpv7a389uzil5lqmrgwhijwjz',
      configSource: GIT,
      source: 'https://github.com/moby/buildkit.git',
      revision: SHA1,
      revisionFrom: 'config-source',
      startedOn: '2021-11-17T15:00:00Z',
      finishedOn: '2021-11-17T15:01:00Z',
    });
  });

  it('takes the client-sent vcs revision as a hint when the context was local (v1)', () => {
    expect(buildFactsOf(slsaV1FromLocal())).toEqual({
      builderId: RUN,
      invocationId: 'rpv7a389uzil5lqmrgwhijwjz',
      configSource: 'Dockerfile',
      source: 'https://github.com/example/app',
      revision: 'abc123',
      revisionFrom: 'vcs-hint',
      startedOn: '2021-11-17T15:00:00Z',
      finishedOn: '2021-11-17T15:01:00Z',
    });
  });

  it('prefers the resolved git commit over a vcs hint that disagrees', () => {
    const s = slsaV02FromGit();
    s.predicate.metadata['https://mobyproject.org/buildkit@v1#metadata'] = {
      vcs: { source: 'https://evil.example/app', revision: 'deadbeef' },
    } as never;
    expect(buildFactsOf(s)).toMatchObject({ revision: SHA1, revisionFrom: 'config-source' });
  });

  it('states nothing for what is not a statement', () => {
    expect(buildFactsOf(null)).toEqual({});
    expect(buildFactsOf({ predicate: 'x' })).toEqual({});
  });
});

describe('Function: buildProvenance (build)', () => {
  const indexWith = async (bytes: Buffer | undefined) => {
    const vault = await tempVault();
    const img = await putImage(vault, [Buffer.from('app')]);
    const statement = bytes ? { bytes, predicateType: 'https://slsa.dev/provenance/v0.2' } : undefined;
    return { vault, ...(await attestedIndex(vault, 'app/web', img, statement)) };
  };

  it('records the build facts of the attestation in the index, naming the attestation layer', async () => {
    const statement = Buffer.from(JSON.stringify(slsaV02FromGit()));
    const { vault, index } = await indexWith(statement);

    const s = await buildProvenance(vault, 'app/web', index.digest);

    expect(s.predicate.build).toEqual({
      status: 'known',
      attestation: {
        digest: descOf('application/vnd.in-toto+json', statement).digest,
        predicateType: 'https://slsa.dev/provenance/v0.2',
      },
      ...buildFactsOf(slsaV02FromGit()),
    });
  });

  it('says why the build is unknown without an attestation', async () => {
    const { vault, index } = await indexWith(undefined);
    const s = await buildProvenance(vault, 'app/web', index.digest);
    expect(s.predicate.build).toEqual({
      status: 'unknown',
      reason: expect.stringMatching(/^no SLSA provenance attestation in the image/),
    });
  });

  it('says the attestation could not be read when it is not JSON, naming it', async () => {
    const { vault, index } = await indexWith(Buffer.from('not json'));
    const s = await buildProvenance(vault, 'app/web', index.digest);
    expect(s.predicate.build).toMatchObject({
      status: 'unknown',
      reason: expect.stringMatching(/^the SLSA provenance attestation could not be read: /),
      attestation: { predicateType: 'https://slsa.dev/provenance/v0.2' },
    });
  });
});

import { formatProvenance, provenanceList, provenanceShow } from '../../../lib/cli/commands/provenance';
import { recordProvenance } from '../../../lib/provenance';
import { attestedIndex, putImage, tempVault } from '../helpers';
import { GIT, RUN, SHA1, slsaV02FromGit } from '../provenance/slsa-statements';

describe('Command: provenance (build attestation)', () => {
  it('show and list answer "which CI run, which commit" from the SLSA attestation when no annotation does', async () => {
    // Prepare: a BuildKit-built index without revision annotations, recorded
    const vault = await tempVault();
    const img = await putImage(vault, [Buffer.from('ci-built')]);
    const { index } = await attestedIndex(vault, 'app/ci', img, {
      bytes: Buffer.from(JSON.stringify(slsaV02FromGit())),
      predicateType: 'https://slsa.dev/provenance/v0.2',
    });
    await recordProvenance(vault, 'app/ci', index.digest);

    // Act
    const text = formatProvenance(await provenanceShow(vault, `app/ci@${index.digest}`));
    const [row] = await provenanceList(vault, { repo: 'app/ci' });

    // Assess
    expect(text).toContain(
      `  commit:    ${SHA1} of https://github.com/moby/buildkit.git (the git context BuildKit built from)`,
    );
    expect(text).toMatch(
      new RegExp(
        `  built by:  ${RUN} \\(invocation rpv7a389uzil5lqmrgwhijwjz, started 2021-11-17T15:00:00Z, from ${GIT.replace(/[.#]/g, '\\$&')}\\); as the SLSA attestation sha256:[0-9a-f]{12}… claims \\(its signature not checked here\\)`,
      ),
    );
    expect(row).toMatchObject({ revision: SHA1, builtBy: RUN });
  });
});

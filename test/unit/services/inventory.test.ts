import { parseRunningImage } from '../../../lib/services/inventory';

const D = `sha256:${'ab'.repeat(32)}`;
const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';

describe('Function: parseRunningImage', () => {
  it.each([
    [`docker-pullable://${ECR}/team/app@${D}`, undefined, 'team/app'],
    [`${ECR}/team/app@${D}`, undefined, 'team/app'],
    [`docker.io/library/nginx@${D}`, undefined, 'library/nginx'],
    [`nginx@${D}`, undefined, 'library/nginx'],
    [`docker-pullable://postgres@${D}`, undefined, 'library/postgres'],
    [`ghcr.io/org/tool@${D}`, undefined, 'org/tool'],
    // ECS: the name as the task definition gives it, the digest apart.
    [`${ECR}/team/app:1.2`, D, 'team/app'],
    [`localhost:5000/team/app:1.2`, D, 'team/app'],
  ])(
    'names %s (digest %s) as %s@digest, the registry dropped as snapshots do',
    (image, digest, repository) => {
      const parsed = parseRunningImage({ image, digest });
      expect(parsed).toMatchObject({ repository, digest: D });
      if ('reference' in parsed) expect(parsed.reference.digest).toBe(D);
    },
  );

  it('takes a bare digest for the local image id, and uses the requested image only when it pins a digest', () => {
    expect(parseRunningImage({ image: D })).toEqual({
      reason: `${D} names no repository (the runtime's local image id)`,
    });
    expect(parseRunningImage({ image: `docker://${D}`, requested: 'ubuntu:24.04' })).toEqual({
      reason: `docker://${D} names no repository (the runtime's local image id)`,
    });
    expect(parseRunningImage({ image: D, requested: `quay.io/x/y@${D}` })).toMatchObject({
      repository: 'x/y',
    });
  });

  it('says why a name without a digest or a broken name cannot be placed', () => {
    expect(parseRunningImage({ image: `${ECR}/team/app:1.2` })).toEqual({
      reason: `${ECR}/team/app:1.2 names no digest`,
    });
    expect(parseRunningImage({ image: '' })).toEqual({
      reason: 'the platform names no image yet (not pulled)',
    });
    expect(parseRunningImage({ image: `${ECR}/Team/App@${D}` })).toMatchObject({
      reason: expect.stringContaining('invalid reference'),
    });
    expect(parseRunningImage({ image: `${ECR}/team/app:1`, digest: 'sha256:abc' })).toMatchObject({
      reason: expect.stringContaining('sha256:abc'),
    });
  });
});

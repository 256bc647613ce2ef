import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  ECRServiceException,
  RepositoryAlreadyExistsException,
  RepositoryNotFoundException,
} from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { EcrRepositories, EcrRepositoryError } from '../../../lib/aws/ecr-repositories';
import { isTagImmutable } from '../../../lib/services/restore';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const ecr = mockClient(ECRClient);

const notFound = () =>
  new RepositoryNotFoundException({ message: 'The repository does not exist', $metadata: {} });
const accessDenied = (action: string) =>
  new ECRServiceException({
    name: 'AccessDeniedException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: `User: arn:aws:sts::123456789012:assumed-role/oncall/x is not authorized to perform: ecr:${action}`,
  });

describe('Class: EcrRepositories', () => {
  beforeEach(() => ecr.reset());

  describe('Method: ensureRepository', () => {
    it('creates a missing repository (MUTABLE, default encryption, no repository-level scan setting)', async () => {
      // Prepare
      ecr.on(DescribeRepositoriesCommand).rejects(notFound());
      ecr.on(CreateRepositoryCommand).resolves({
        repository: { repositoryName: 'team/app', imageTagMutability: 'MUTABLE' },
      });
      const repos = new EcrRepositories();

      // Act
      const state = await repos.ensureRepository(REGISTRY, 'team/app');

      // Assess
      expect(state).toEqual({ created: true, immutableTags: false, exceptions: [] });
      expect(ecr.commandCalls(DescribeRepositoriesCommand)[0].args[0].input).toEqual({
        registryId: '123456789012',
        repositoryNames: ['team/app'],
      });
      expect(ecr.commandCalls(CreateRepositoryCommand)[0].args[0].input).toEqual({
        registryId: '123456789012',
        repositoryName: 'team/app',
        imageTagMutability: 'MUTABLE',
      });
    });

    it('creates with IMMUTABLE tags when asked', async () => {
      ecr.on(DescribeRepositoriesCommand).rejects(notFound());
      ecr.on(CreateRepositoryCommand).resolves({
        repository: { repositoryName: 'app', imageTagMutability: 'IMMUTABLE' },
      });
      const state = await new EcrRepositories({ immutableTags: true }).ensureRepository(REGISTRY, 'app');
      expect(state.immutableTags).toBe(true);
      expect(ecr.commandCalls(CreateRepositoryCommand)[0].args[0].input.imageTagMutability).toBe('IMMUTABLE');
    });

    it('finds an existing immutable repository and creates nothing', async () => {
      ecr.on(DescribeRepositoriesCommand).resolves({
        repositories: [{ repositoryName: 'app', imageTagMutability: 'IMMUTABLE' }],
      });
      const state = await new EcrRepositories().ensureRepository(REGISTRY, 'app');
      expect(state).toEqual({ created: false, immutableTags: true, exceptions: [] });
      expect(ecr.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
    });

    it('reports the exclusion filters of IMMUTABLE_WITH_EXCLUSION, and the tag rule honours them', async () => {
      ecr.on(DescribeRepositoriesCommand).resolves({
        repositories: [
          {
            repositoryName: 'app',
            imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
            imageTagMutabilityExclusionFilters: [{ filterType: 'WILDCARD', filter: 'latest*' }],
          },
        ],
      });
      const state = await new EcrRepositories().ensureRepository(REGISTRY, 'app');
      expect(state).toEqual({ created: false, immutableTags: true, exceptions: ['latest*'] });
      expect(isTagImmutable(state, '1.4')).toBe(true);
      expect(isTagImmutable(state, 'latest-dev')).toBe(false);
    });

    it('treats a repository created by someone else meanwhile as found', async () => {
      ecr
        .on(DescribeRepositoriesCommand)
        .rejectsOnce(notFound())
        .resolves({ repositories: [{ repositoryName: 'app', imageTagMutability: 'MUTABLE' }] });
      ecr
        .on(CreateRepositoryCommand)
        .rejects(new RepositoryAlreadyExistsException({ message: 'exists', $metadata: {} }));
      const state = await new EcrRepositories().ensureRepository(REGISTRY, 'app');
      expect(state).toEqual({ created: false, immutableTags: false, exceptions: [] });
    });

    it('asks ECR once per repository, in the registry’s region, however many images go there', async () => {
      ecr.on(DescribeRepositoriesCommand).resolves({ repositories: [{ repositoryName: 'app' }] });
      const regions: string[] = [];
      const repos = new EcrRepositories({
        client: (region) => {
          regions.push(region);
          return new ECRClient({ region });
        },
      });
      await Promise.all([1, 2, 3].map(() => repos.ensureRepository(REGISTRY, 'app')));
      expect(ecr.commandCalls(DescribeRepositoriesCommand)).toHaveLength(1);
      expect(regions).toEqual(['eu-west-1']);
    });

    it('throws naming the action and the repository ARN when CreateRepository is denied', async () => {
      ecr.on(DescribeRepositoriesCommand).rejects(notFound());
      ecr.on(CreateRepositoryCommand).rejects(accessDenied('CreateRepository'));
      const p = new EcrRepositories().ensureRepository(REGISTRY, 'team/app');
      await expect(p).rejects.toBeInstanceOf(EcrRepositoryError);
      await expect(p).rejects.toThrow(
        'ecr:CreateRepository on arn:aws:ecr:eu-west-1:123456789012:repository/team/app was denied',
      );
      await expect(p).rejects.toMatchObject({ action: 'ecr:CreateRepository', repository: 'team/app' });
    });

    it('throws naming DescribeRepositories when that is denied, and asks again on the next call', async () => {
      ecr
        .on(DescribeRepositoriesCommand)
        .rejectsOnce(accessDenied('DescribeRepositories'))
        .resolves({
          repositories: [{ repositoryName: 'app' }],
        });
      const repos = new EcrRepositories();
      await expect(repos.ensureRepository(REGISTRY, 'app')).rejects.toThrow(
        /ecr:DescribeRepositories on arn:aws:ecr:eu-west-1:123456789012:repository\/app was denied.*not authorized/,
      );
      await expect(repos.ensureRepository(REGISTRY, 'app')).resolves.toMatchObject({ created: false });
    });

    it('names the partition of a China region in the ARN', async () => {
      ecr.on(DescribeRepositoriesCommand).rejects(accessDenied('DescribeRepositories'));
      await expect(
        new EcrRepositories().ensureRepository('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', 'app'),
      ).rejects.toThrow('arn:aws-cn:ecr:cn-north-1:123456789012:repository/app');
    });

    it('refuses a host that is not ECR, calling nothing', async () => {
      await expect(new EcrRepositories().ensureRepository('registry.example.com', 'app')).rejects.toThrow(
        'registry.example.com is not an ECR registry',
      );
      expect(ecr.calls()).toHaveLength(0);
    });

    it('passes other failures on with the call and the repository named', async () => {
      ecr.on(DescribeRepositoriesCommand).rejects(
        new ECRServiceException({
          name: 'ServerException',
          $fault: 'server',
          $metadata: {},
          message: 'internal',
        }),
      );
      await expect(new EcrRepositories().ensureRepository(REGISTRY, 'app')).rejects.toThrow(
        'ecr:DescribeRepositories of repository "app" in account 123456789012, eu-west-1 failed: ServerException: internal',
      );
    });
  });

  describe('Method: describeRepository', () => {
    it('returns undefined for a missing repository and creates nothing', async () => {
      ecr.on(DescribeRepositoriesCommand).rejects(notFound());
      await expect(new EcrRepositories().describeRepository(REGISTRY, 'app')).resolves.toBeUndefined();
      expect(ecr.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
    });

    it('returns the state of an existing one', async () => {
      ecr.on(DescribeRepositoriesCommand).resolves({
        repositories: [{ repositoryName: 'app', imageTagMutability: 'IMMUTABLE' }],
      });
      await expect(new EcrRepositories().describeRepository(REGISTRY, 'app')).resolves.toEqual({
        created: false,
        immutableTags: true,
        exceptions: [],
      });
    });
  });
});

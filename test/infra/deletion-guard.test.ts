import { Match, Template } from 'aws-cdk-lib/assertions';
import { readAppConfig } from '../../lib/infra';
import { appFromContext, statementsOf, vaultStack } from './support';

/** What the deletion guard's restore pushes with: the distribution API's upload and manifest calls. */
const PUSH = ['ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage'];
/** What a snapshot pulls with, on the same repositories. */
const PULL = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'];
const ecrArn = (name: string) => `arn:aws:ecr:eu-west-1:111122223333:repository/${name}`;

/** Every role's statements in the stack that allow one of `actions`, by role logical ID. */
function rolesAllowing(template: Template, actions: string[]) {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.entries(policies)
    .filter(([, p]) =>
      (
        p as { Properties: { PolicyDocument: { Statement: Array<{ Action: unknown }> } } }
      ).Properties.PolicyDocument.Statement.some((s) =>
        ([] as unknown[]).concat(s.Action).some((a) => actions.includes(a as string)),
      ),
    )
    .map(([id]) => id);
}

describe('ImageVault autoRestoreInUse', () => {
  describe('off (the default)', () => {
    // GIVEN the defaults
    const t = vaultStack({ repositories: ['team-a/'] }).template();

    it('gives no role in the stack any ECR push permission', () => {
      // THEN
      expect(rolesAllowing(t, PUSH)).toEqual([]);
    });

    it('does not turn the restore on in the snapshot function', () => {
      t.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Environment: { Variables: Match.objectLike({ AUTO_RESTORE_IN_USE: Match.anyValue() }) } },
        0,
      );
    });
  });

  describe('on', () => {
    // GIVEN the restore turned on, two protected prefixes
    const t = vaultStack({ repositories: ['team-a/', 'payments'], autoRestoreInUse: true }).template();

    it('lets the snapshot function push exactly the upload and manifest calls, only into the protected repositories', () => {
      // THEN: the push actions sit with the pull ones (CDK merges statements of equal resources), and nowhere else
      const ecr = statementsOf(t, 'ImageVaultSnapshotRole').filter((s) =>
        ([] as unknown[]).concat(s.Action).some((a) => String(a).startsWith('ecr:')),
      );
      const withPush = ecr.filter((s) => ([] as unknown[]).concat(s.Action).includes('ecr:PutImage'));
      expect(withPush).toHaveLength(1);
      expect(withPush[0].Action).toEqual(
        [...PUSH, ...PULL, 'ecr:DescribeRepositories'].sort((x, y) => x.localeCompare(y)),
      );
      expect(withPush[0].Resource).toEqual([ecrArn('payments*'), ecrArn('team-a/*')]);
    });

    it('gives no other role a push permission, nor anyone CreateRepository', () => {
      expect(rolesAllowing(t, PUSH).map((id) => id.replace(/DefaultPolicy.*$/, ''))).toEqual([
        expect.stringMatching(/^ImageVaultSnapshotRole/),
      ]);
      expect(rolesAllowing(t, ['ecr:CreateRepository'])).toEqual([]);
    });

    it('lets the snapshot function read the in-use inventory (the vault read grant covers every key)', () => {
      const read = statementsOf(t, 'ImageVaultSnapshotRole').find((s) =>
        ([] as unknown[]).concat(s.Action).includes('s3:GetObject'),
      );
      expect(read?.Resource).toEqual({
        'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^ImageVaultBucket/), 'Arn'] }, '/*']],
      });
    });

    it('tells the snapshot function to restore', () => {
      t.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Environment: { Variables: Match.objectLike({ AUTO_RESTORE_IN_USE: 'true' }) } },
        1,
      );
    });
  });

  describe('context key', () => {
    const config = (context: Record<string, unknown>) => readAppConfig((k) => context[k], {});

    it('reads autoRestoreInUse as a boolean or its text, default false, naming a bad value', () => {
      expect(config({}).autoRestoreInUse).toBe(false);
      expect(config({ autoRestoreInUse: 'true' }).autoRestoreInUse).toBe(true);
      expect(config({ autoRestoreInUse: true }).autoRestoreInUse).toBe(true);
      expect(() => config({ autoRestoreInUse: 'yes' })).toThrow(
        'autoRestoreInUse "yes" must be true or false',
      );
    });

    it('reaches the snapshot function of the app (-c autoRestoreInUse=true)', () => {
      // GIVEN / WHEN
      const { vault } = appFromContext({ autoRestoreInUse: 'true' });
      // THEN
      Template.fromStack(vault).resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Environment: { Variables: Match.objectLike({ AUTO_RESTORE_IN_USE: 'true' }) } },
        1,
      );
    });
  });
});

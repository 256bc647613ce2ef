/**
 * The recorded-call half of the contract harness, checked on itself: a call maps to the IAM requests AWS makes of
 * it; an unknown operation fails loudly; and removing one permission from a role makes exactly the recorded calls
 * that need it fail (the control: a harness that cannot fail proves nothing).
 */
import { checkRecordedCalls, DeniedCallsError, DeployedFunctions } from './check-calls';
import { modelOf, repositoryApp, type Deployment, type Statement } from './deployment';
import { evaluate } from './evaluate';
import type { RecordedCall } from './recorder';
import { deployedKey, iamRequestsOf, UnmappedCallError } from './sdk-actions';

const call = (c: Partial<RecordedCall> & Pick<RecordedCall, 'service' | 'operation'>): RecordedCall => ({
  principal: 'snapshot',
  input: {},
  test: 'a test',
  ...c,
});

describe('the recorded-call checks', () => {
  const d = modelOf(repositoryApp());
  const functions = new DeployedFunctions(d);
  const names = functions.names();

  describe('Function: deployedKey', () => {
    it("moves a test vault's key under the deployed vault's prefix, whatever the test's own prefix", () => {
      expect(deployedKey('lambda-snap/blobs/sha256/ab', names)).toBe('blobs/sha256/ab');
      expect(deployedKey('vault/imagevault/provenance/x/@log/1.json', names)).toBe(
        'imagevault/provenance/x/@log/1.json',
      );
      expect(deployedKey('index.json', { ...names, vaultPrefix: 'team/vault' })).toBe(
        'team/vault/index.json',
      );
      expect(deployedKey('vault/', names)).toBe('');
    });
  });

  describe('Function: iamRequestsOf', () => {
    it('maps an Object Lock write to PutObject and PutObjectRetention on the object', () => {
      const requests = iamRequestsOf(
        call({
          service: 'S3',
          operation: 'PutObject',
          input: { Key: 'v/imagevault/x', ObjectLockMode: 'GOVERNANCE' },
        }),
        names,
      );
      expect(requests.map((r) => [r.action, r.resource])).toEqual([
        ['s3:PutObject', `arn:aws:s3:::${names.vaultBucket}/imagevault/x`],
        ['s3:PutObjectRetention', `arn:aws:s3:::${names.vaultBucket}/imagevault/x`],
      ]);
    });

    it('maps a registry GET of a blob to GetDownloadUrlForLayer on its repository', () => {
      expect(
        iamRequestsOf(
          call({
            service: 'ECR registry',
            operation: 'GET',
            input: { path: '/v2/team/app/blobs/sha256:ab' },
          }),
          names,
        ),
      ).toEqual([
        expect.objectContaining({
          action: 'ecr:GetDownloadUrlForLayer',
          resource: `arn:aws:ecr:${names.region}:${names.account}:repository/team/app`,
        }),
      ]);
    });

    it('throws for an operation it does not know, naming it and the test', () => {
      const unknown = call({ service: 'S3', operation: 'DeleteBucket' });
      expect(() => iamRequestsOf(unknown, names)).toThrow(UnmappedCallError);
      expect(() => iamRequestsOf(unknown, names)).toThrow(
        /snapshot function calls S3 DeleteBucket .* \(test: a test\)/,
      );
    });
  });

  describe('control: one permission removed', () => {
    /** The deployment with `action` taken out of every statement of the role's identity policies. */
    const without = (role: string, action: string): Deployment => {
      const strip = (s: Statement): Statement => {
        const actions = ([] as string[]).concat(s.Action ?? []).filter((a) => a !== action);
        return { ...s, Action: actions.length > 0 ? actions : ['none:None'] };
      };
      return {
        ...d,
        roles: new Map(
          [...d.roles].map(([arn, r]) => [
            arn,
            arn !== role
              ? r
              : {
                  ...r,
                  policies: r.policies.map((p) => ({
                    ...p,
                    document: { ...p.document, Statement: p.document.Statement.map(strip) },
                  })),
                },
          ]),
        ),
      };
    };
    const calls = [
      call({ service: 'S3', operation: 'GetObject', input: { Key: 'v/index.json' } }),
      call({
        service: 'S3',
        operation: 'PutObject',
        input: { Key: 'v/blobs/sha256/ab' },
        test: 'writes a blob',
      }),
      call({ service: 'SNS', operation: 'Publish' }),
    ];

    it('passes the recorded calls on the unchanged deployment (the baseline)', async () => {
      await expect(checkRecordedCalls(calls, [d])).resolves.toEqual({ requests: 3 });
    });

    it('fails exactly the blob write once the snapshot role loses s3:PutObject, naming the call and the test', async () => {
      const broken = without(functions.principalOf(calls[0])!, 's3:PutObject');
      await expect(checkRecordedCalls(calls, [broken])).rejects.toThrow(
        /^1 AWS request\(s\) the deployed policies would deny:\n {2}- snapshot: s3:PutObject on arn:aws:s3:::\S+\/blobs\/sha256\/ab as \S+ \[aws:SecureTransport=true\] — for S3 PutObject, in "writes a blob"/,
      );
    });

    it('fails the publish when the role loses the messaging key, through the KMS request SNS makes for it', async () => {
      const broken = without(functions.principalOf(calls[0])!, 'kms:GenerateDataKey');
      const error = await checkRecordedCalls(calls, [broken]).catch((e: Error) => e);
      expect(error).toBeInstanceOf(DeniedCallsError);
      // the vault write needs a data key of the vault's key too: both, and nothing else
      expect((error as Error).message).toMatch(/^2 AWS request/);
      expect((error as Error).message).toMatch(
        /kms:GenerateDataKey on arn:aws:kms:\S+ as \S+ .*— for SNS Publish/,
      );
    });
  });

  describe("the deletion guard's pushes (autoRestoreInUse)", () => {
    const pushes = [
      call({ service: 'ECR registry', operation: 'POST', input: { path: '/v2/team/app/blobs/uploads/' } }),
      call({ service: 'ECR registry', operation: 'PUT', input: { path: '/v2/team/app/blobs/uploads/u-1' } }),
      call({ service: 'ECR registry', operation: 'PUT', input: { path: '/v2/team/app/manifests/v1' } }),
      call({ service: 'ECR', operation: 'DescribeRepositories', input: { repositoryNames: ['team/app'] } }),
    ];

    it('are allowed where the app turns the restore on (this repository app)', async () => {
      await expect(checkRecordedCalls(pushes, [d])).resolves.toEqual({ requests: 4 });
    });

    it('are denied where it is off, and the check does not ask them of that deployment', async () => {
      // GIVEN the same app with the restore off
      const off = modelOf(repositoryApp({ autoRestoreInUse: false }));
      const offFunctions = new DeployedFunctions(off);
      // THEN the snapshot role may not push…
      const role = offFunctions.principalOf(pushes[0])!;
      const resource = `arn:aws:ecr:${names.region}:${names.account}:repository/team/app`;
      for (const action of ['ecr:PutImage', 'ecr:InitiateLayerUpload', 'ecr:CompleteLayerUpload']) {
        const decision = await evaluate(off, { principal: role, action, resource });
        expect([action, decision.allowed, decision.result]).toEqual([action, false, 'ImplicitlyDenied']);
      }
      // …and a function configured without AUTO_RESTORE_IN_USE never makes those calls, so none is checked there
      await expect(checkRecordedCalls(pushes, [off])).resolves.toEqual({ requests: 0 });
    });
  });
});

/**
 * The recorded-call half of the contract harness, checked on itself: a call maps to the IAM requests AWS makes of
 * it, implied KMS requests included; an unknown operation fails loudly; and removing one permission from a role
 * makes exactly the calls that need it fail (the control test: a harness that cannot fail proves nothing).
 */
import { checkRecordedCalls, impliedKmsRequests, DeniedCallsError } from './check-calls';
import { Deployment, testDeployment } from './deployed-policies';
import type { RecordedCall } from './recorder';
import { deployedKey, iamRequestsOf, UnmappedCallError } from './sdk-actions';

const call = (c: Partial<RecordedCall> & Pick<RecordedCall, 'service' | 'operation'>): RecordedCall => ({
  principal: 'snapshot',
  input: {},
  test: 'a test',
  ...c,
});

describe('the recorded-call checks', () => {
  const d = testDeployment();
  const names = d.names();

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
      expect(() => iamRequestsOf(call({ service: 'S3', operation: 'DeleteBucket' }), names)).toThrow(
        UnmappedCallError,
      );
      expect(() => iamRequestsOf(call({ service: 'S3', operation: 'DeleteBucket' }), names)).toThrow(
        /snapshot function calls S3 DeleteBucket .* \(test: a test\)/,
      );
    });
  });

  describe('Function: impliedKmsRequests', () => {
    it('adds the data key for a write to the SSE-KMS vault and for a publish to the encrypted topic', () => {
      const put = call({ service: 'S3', operation: 'PutObject', input: { Key: 'blobs/sha256/ab' } });
      const [s3] = iamRequestsOf(put, names);
      expect(impliedKmsRequests(put, s3, d, names).map((r) => r.action)).toEqual(['kms:GenerateDataKey']);
      const publish = call({ service: 'SNS', operation: 'Publish' });
      const [sns] = iamRequestsOf(publish, names);
      const kms = impliedKmsRequests(publish, sns, d, names);
      expect(kms.map((r) => r.action)).toEqual(['kms:GenerateDataKey', 'kms:Decrypt']);
      expect(kms[0].resource).not.toBe(impliedKmsRequests(put, s3, d, names)[0].resource);
    });
  });

  describe('control: one permission removed', () => {
    /** The deployment with every statement granting `action` removed from the role's policies. */
    const without = (role: string, action: string): Deployment => {
      const copy = JSON.parse(JSON.stringify(d.resources)) as Deployment['resources'];
      const roleRef = copy.find((r) => r.arn === role)!.ref;
      for (const p of copy.filter((r) => r.type === 'AWS::IAM::Policy')) {
        if (!((p.properties.Roles as string[]) ?? []).includes(roleRef)) continue;
        const doc = p.properties.PolicyDocument as { Statement: Array<{ Action: string | string[] }> };
        for (const s of doc.Statement) {
          const actions = ([] as string[]).concat(s.Action).filter((a) => a !== action);
          s.Action = actions.length > 0 ? actions : ['none:None'];
        }
      }
      return new Deployment(copy);
    };

    it('denies the snapshot role its vault writes once s3:PutObject is removed, and allows them before', async () => {
      const role = d.roleOf('snapshot');
      const request = {
        principal: role,
        action: 's3:PutObject',
        resource: `arn:aws:s3:::${names.vaultBucket}/blobs/sha256/ab`,
        context: { 'aws:SecureTransport': 'true' },
      };
      expect((await d.evaluate(request)).allowed).toBe(true);
      const broken = without(role, 's3:PutObject');
      expect(await broken.evaluate(request)).toMatchObject({ allowed: false, result: 'ImplicitlyDenied' });
      // and the other permissions of the role still hold
      expect((await broken.evaluate({ ...request, action: 's3:GetObject' })).allowed).toBe(true);
    });

    it('denies a publish over plain HTTP (the topic policy), and a publish by another account', async () => {
      const role = d.roleOf('snapshot');
      const publish = { principal: role, action: 'sns:Publish', resource: names.alertTopicArn };
      expect((await d.evaluate({ ...publish, context: { 'aws:SecureTransport': 'true' } })).allowed).toBe(
        true,
      );
      expect(await d.evaluate({ ...publish, context: { 'aws:SecureTransport': 'false' } })).toMatchObject({
        allowed: false,
        result: 'ExplicitlyDenied',
      });
    });

    it('fails a recorded snapshot write once the role loses s3:PutObject, naming the call and the test', async () => {
      const calls = [
        call({ service: 'S3', operation: 'GetObject', input: { Key: 'v/index.json' } }),
        call({
          service: 'S3',
          operation: 'PutObject',
          input: { Key: 'v/blobs/sha256/ab' },
          test: 'writes a blob',
        }),
      ];
      await expect(checkRecordedCalls(calls, d)).resolves.toEqual({ requests: 4 });
      const broken = without(d.roleOf('snapshot'), 's3:PutObject');
      await expect(checkRecordedCalls(calls, broken)).rejects.toThrow(
        /^1 AWS request\(s\) the deployed policies would deny:\n {2}- snapshot \(arn:aws:iam::\d+:role\/\S+\): s3:PutObject on arn:aws:s3:::\S+\/blobs\/sha256\/ab — for S3 PutObject, in "writes a blob"/,
      );
    });

    it('reports every denied request in one error', () => {
      const e = new DeniedCallsError(['a', 'b']);
      expect(e.message).toBe('2 AWS request(s) the deployed policies would deny:\n  - a\n  - b');
    });
  });
});

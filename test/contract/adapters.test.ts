/**
 * The AWS adapters each Lambda wires in (lambdas/*.ts), run as that function: the control-plane calls the handler
 * tests give fakes for — an ECR token, the upstream credentials secret, ECR scan findings — are made here through
 * the real adapters against mocked clients, recorded, and checked against the deployed policies when the file ends
 * (./setup.ts), in every deployment the harness models. A permission one of them lacks fails this file.
 */
import {
  DescribeImageScanFindingsCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
} from '@aws-sdk/client-ecr';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { ecrCredentials } from '../../lib/aws/ecr-auth';
import { EcrScanFindings } from '../../lib/aws/scan-findings';
import { secretsManagerCredentials } from '../../lib/aws/secrets-credentials';
import { UPSTREAM_SECRET } from './deployment';
import { asPrincipal, recordedCalls } from './recorder';

const ECR_HOST = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('the Lambdas’ AWS adapters, as their functions (recorded, checked against the deployed roles)', () => {
  const ecr = mockClient(ECRClient);
  const secrets = mockClient(SecretsManagerClient);

  beforeEach(() => {
    ecr.reset();
    secrets.reset();
    ecr.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [
        {
          authorizationToken: Buffer.from('AWS:token').toString('base64'),
          expiresAt: new Date(Date.now() + 12 * 3600_000),
          proxyEndpoint: `https://${ECR_HOST}`,
        },
      ],
    });
    secrets.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ 'docker.io': { username: 'ci', password: 'pat' } }),
    });
    ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanFindings: { findings: [] } });
  });

  it('snapshot: an ECR token for the protected registry, the upstream secret for a base on Docker Hub', async () => {
    // As lambdas/snapshot.ts wires them.
    const credentials = ecrCredentials({
      client: () => new ECRClient({ region: 'eu-west-1' }),
      fallback: secretsManagerCredentials({
        secretId: UPSTREAM_SECRET.secretArn,
        client: new SecretsManagerClient({ region: 'eu-west-1' }),
      }),
    });
    await asPrincipal('snapshot', async () => {
      expect(await credentials(ECR_HOST)).toBeDefined();
      expect(await credentials('docker.io')).toBeDefined();
    });
  });

  it('upstream: the upstream secret', async () => {
    const credentials = secretsManagerCredentials({
      secretId: UPSTREAM_SECRET.secretArn,
      client: new SecretsManagerClient({ region: 'eu-west-1' }),
    });
    await asPrincipal('upstream', async () => {
      expect(await credentials('docker.io')).toBeDefined();
    });
  });

  it('scan: the findings of an image in a protected repository', async () => {
    const findings = new EcrScanFindings({ client: new ECRClient({ region: 'eu-west-1' }) });
    await asPrincipal('scan', () => findings.topFindings('team-a/app', DIGEST));
  });

  it('recorded each of those calls, as its function', () => {
    expect(recordedCalls().map((c) => `${c.principal} ${c.service}:${c.operation}`)).toEqual([
      'snapshot ECR:GetAuthorizationToken',
      'snapshot Secrets Manager:GetSecretValue',
      'upstream Secrets Manager:GetSecretValue',
      'scan ECR:DescribeImageScanFindings',
    ]);
  });
});

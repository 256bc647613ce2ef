import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ECR_TOKEN_RENEW_BEFORE_MS,
  ecrCredentials,
  ecrRegistryHost,
  isEcrRegistry,
} from '../../../lib/aws/ecr-auth';
import { CredentialError } from '../../../lib/registry/errors';

const HOST = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('Function: isEcrRegistry', () => {
  it.each([
    [HOST, { account: '123456789012', region: 'eu-west-1' }],
    [
      '123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com',
      { account: '123456789012', region: 'us-gov-west-1' },
    ],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', { account: '123456789012', region: 'cn-north-1' }],
  ])('matches %s', (host, expected) => {
    expect(isEcrRegistry(host)).toEqual(expected);
  });

  it.each([
    'public.ecr.aws',
    '12345678901.dkr.ecr.eu-west-1.amazonaws.com',
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example',
    '123456789012.dkr.ecr.eu-west-1.amazonaws.com:443',
    '127.0.0.1:5000',
    'docker.io',
  ])('does not match %s', (host) => {
    expect(isEcrRegistry(host)).toBeUndefined();
  });

  it('round-trips with ecrRegistryHost', () => {
    expect(isEcrRegistry(ecrRegistryHost('123456789012', 'cn-northwest-1'))).toEqual({
      account: '123456789012',
      region: 'cn-northwest-1',
    });
  });
});

describe('Function: ecrCredentials', () => {
  const ecr = mockClient(ECRClient);
  let clock: number;
  const now = () => clock;
  const token = (password: string, expiresInMs: number) => ({
    authorizationData: [
      {
        authorizationToken: b64(`AWS:${password}`),
        expiresAt: new Date(clock + expiresInMs),
        proxyEndpoint: `https://${HOST}`,
      },
    ],
  });
  const regions: string[] = [];
  const client = (region: string) => {
    regions.push(region);
    return new ECRClient({ region });
  };

  beforeEach(() => {
    ecr.reset();
    regions.length = 0;
    clock = Date.parse('2026-03-01T00:00:00Z');
  });

  it('calls GetAuthorizationToken for the account in the host region and decodes AWS:password', async () => {
    // Prepare
    ecr.on(GetAuthorizationTokenCommand).resolves(token('secret:with:colons', 12 * 3600_000));

    // Act
    const cred = await ecrCredentials({ client, now })(HOST);

    // Assess
    // expiresAt: the token's expiry less the 5-minute renewal margin, so a long-lived client asks again in time
    expect(cred).toEqual({
      username: 'AWS',
      password: 'secret:with:colons',
      expiresAt: clock + 12 * 3600_000 - ECR_TOKEN_RENEW_BEFORE_MS,
    });
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)[0].args[0].input).toEqual({
      registryIds: ['123456789012'],
    });
    expect(regions).toEqual(['eu-west-1']);
  });

  it('caches the token until 5 minutes before it expires, then renews it', async () => {
    // Prepare
    ecr
      .on(GetAuthorizationTokenCommand)
      .resolvesOnce(token('first', 12 * 3600_000))
      .resolvesOnce(token('second', 12 * 3600_000));
    const provider = ecrCredentials({ client, now });

    // Act
    const a = await provider(HOST);
    clock += 12 * 3600_000 - ECR_TOKEN_RENEW_BEFORE_MS - 1;
    const b = await provider(HOST);
    clock += 1;
    const c = await provider(HOST);

    // Assess
    expect([a?.password, b?.password, c?.password]).toEqual(['first', 'first', 'second']);
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(2);
    expect(regions).toEqual(['eu-west-1']); // one client per region, reused
  });

  it('shares one call between concurrent asks for the same registry', async () => {
    // Prepare
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    ecr.on(GetAuthorizationTokenCommand).callsFake(async () => {
      await gate;
      return token('shared', 3600_000);
    });
    const provider = ecrCredentials({ client, now });

    // Act
    const asks = Promise.all([provider(HOST), provider(HOST), provider(HOST)]);
    release();
    const creds = await asks;

    // Assess
    expect(creds.map((c) => c?.password)).toEqual(['shared', 'shared', 'shared']);
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
  });

  it('keeps registries apart: another account or region gets its own token', async () => {
    // Prepare
    ecr
      .on(GetAuthorizationTokenCommand)
      .callsFake(async (input: { registryIds: string[] }) => token(input.registryIds[0], 3600_000));
    const provider = ecrCredentials({ client, now });

    // Act
    const a = await provider(HOST);
    const b = await provider('210987654321.dkr.ecr.us-east-1.amazonaws.com');

    // Assess
    expect([a?.password, b?.password]).toEqual(['123456789012', '210987654321']);
    expect(regions).toEqual(['eu-west-1', 'us-east-1']);
  });

  it('does not cache a failure: the next ask calls again', async () => {
    // Prepare
    ecr
      .on(GetAuthorizationTokenCommand)
      .rejectsOnce(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }))
      .resolves(token('ok', 3600_000));
    const provider = ecrCredentials({ client, now });

    // Act
    const first = provider(HOST);

    // Assess
    await expect(first).rejects.toThrow(CredentialError);
    await expect(provider(HOST)).resolves.toMatchObject({ username: 'AWS', password: 'ok' });
  });

  it('throws CredentialError when the token is not base64 of user:password', async () => {
    // Prepare
    ecr
      .on(GetAuthorizationTokenCommand)
      .resolves({ authorizationData: [{ authorizationToken: b64('nocolon') }] });

    // Act + Assess
    await expect(ecrCredentials({ client, now })(HOST)).rejects.toThrow(/not base64 of user:password/);
  });

  it('throws CredentialError when ECR returns no authorizationData', async () => {
    // Prepare
    ecr.on(GetAuthorizationTokenCommand).resolves({});

    // Act + Assess
    await expect(ecrCredentials({ client, now })(HOST)).rejects.toThrow(/no authorizationData/);
  });

  it('asks the fallback for hosts that are not ECR, and never calls ECR for them', async () => {
    // Prepare
    const asked: string[] = [];
    const fallback = async (registry: string) => {
      asked.push(registry);
      return { username: 'u', password: 'p' };
    };

    // Act
    const cred = await ecrCredentials({ client, fallback })('registry.example.com');

    // Assess
    expect(cred).toEqual({ username: 'u', password: 'p' });
    expect(asked).toEqual(['registry.example.com']);
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(0);
  });
});

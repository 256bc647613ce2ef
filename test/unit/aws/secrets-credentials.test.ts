import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { SECRET_CREDENTIALS_TTL_MS, secretsManagerCredentials } from '../../../lib/aws/secrets-credentials';
import { CredentialError } from '../../../lib/registry/errors';

const SECRET_ID = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:imagevault/upstream-AbCdEf';
const SECRET = {
  'docker.io': { username: 'ci-bot', password: 'hunter2-pat' },
  'registry.example.com:5000': { token: 'bearer-abc' },
};

describe('Function: secretsManagerCredentials', () => {
  const sm = mockClient(SecretsManagerClient);
  let clock: number;
  const now = () => clock;
  const provider = (extra: Partial<Parameters<typeof secretsManagerCredentials>[0]> = {}) =>
    secretsManagerCredentials({ secretId: SECRET_ID, client: new SecretsManagerClient({}), now, ...extra });

  beforeEach(() => {
    sm.reset();
    clock = Date.parse('2026-03-01T00:00:00Z');
  });

  it('maps a login and a token by registry host, Docker Hub under any of its names', async () => {
    // Prepare
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(SECRET) });
    const creds = provider();

    // Act & Assess
    await expect(creds('docker.io')).resolves.toEqual({ username: 'ci-bot', password: 'hunter2-pat' });
    await expect(creds('registry-1.docker.io')).resolves.toEqual({
      username: 'ci-bot',
      password: 'hunter2-pat',
    });
    await expect(creds('registry.example.com:5000')).resolves.toEqual({ registryToken: 'bearer-abc' });
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(sm.commandCalls(GetSecretValueCommand)[0].args[0].input).toEqual({ SecretId: SECRET_ID });
  });

  it('asks the fallback (default: anonymous) for registries the secret does not name', async () => {
    // Prepare
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(SECRET) });
    const fallback = jest.fn(async () => ({ username: 'other', password: 'x' }));

    // Act & Assess
    await expect(provider()('ghcr.io')).resolves.toBeUndefined();
    await expect(provider({ fallback })('ghcr.io')).resolves.toEqual({ username: 'other', password: 'x' });
    expect(fallback).toHaveBeenCalledWith('ghcr.io');
  });

  it('reads the secret once per TTL (default 15 minutes), concurrent asks sharing one read', async () => {
    // Prepare
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: JSON.stringify(SECRET) })
      .resolves({
        SecretString: JSON.stringify({ 'docker.io': { username: 'ci-bot', password: 'rotated' } }),
      });
    const creds = provider();

    // Act
    await Promise.all([creds('docker.io'), creds('docker.io'), creds('ghcr.io')]);
    clock += SECRET_CREDENTIALS_TTL_MS - 1;
    const before = await creds('docker.io');
    clock += 1;
    const after = await creds('docker.io');

    // Assess
    expect(before?.password).toBe('hunter2-pat');
    expect(after?.password).toBe('rotated');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('honours ttlMs', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(SECRET) });
    const creds = provider({ ttlMs: 1000 });
    await creds('docker.io');
    clock += 1000;
    await creds('docker.io');
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('fails with a CredentialError naming the secret when it does not exist', async () => {
    // Prepare
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: {},
      }),
    );

    // Act
    const err = await provider()('docker.io').catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(CredentialError);
    expect((err as Error).message).toContain(SECRET_ID);
    expect((err as Error).message).toContain('ResourceNotFoundException');
  });

  it('retries the read after a failure instead of caching it', async () => {
    sm.on(GetSecretValueCommand)
      .rejectsOnce(new Error('throttled'))
      .resolves({ SecretString: JSON.stringify(SECRET) });
    const creds = provider();
    await expect(creds('docker.io')).rejects.toBeInstanceOf(CredentialError);
    await expect(creds('docker.io')).resolves.toEqual({ username: 'ci-bot', password: 'hunter2-pat' });
  });

  it.each([
    ['not JSON', '{"docker.io": {"username": "ci-bot", "password": "hunter2-pat"'],
    ['not an object', JSON.stringify(['hunter2-pat'])],
    ['an entry without password or token', JSON.stringify({ 'docker.io': { username: 'hunter2-pat' } })],
    ['an entry that is a string', JSON.stringify({ 'docker.io': 'hunter2-pat' })],
  ])('fails on a malformed secret (%s), naming the secret but never its content', async (_case, text) => {
    // Prepare
    sm.on(GetSecretValueCommand).resolves({ SecretString: text });

    // Act
    const err = await provider()('docker.io').catch((e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(CredentialError);
    expect((err as Error).message).toContain(SECRET_ID);
    expect((err as Error).message).not.toContain('hunter2');
    expect(String((err as Error).cause ?? '')).not.toContain('hunter2');
  });

  it('fails on a binary secret', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) });
    await expect(provider()('docker.io')).rejects.toThrow(/no SecretString/);
  });
});

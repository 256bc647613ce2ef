import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { dockerConfigCredentials, staticCredentials } from '../../../lib/registry/auth';
import { CredentialError } from '../../../lib/registry/errors';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * A credential helper speaking the docker-credential-helpers protocol: reads the server from stdin, answers from a
 * fixed table, and says "credentials not found" (exit 1) otherwise, as the real helpers do.
 */
const HELPER = `#!/bin/sh
[ "$1" = get ] || { echo "unknown command $1" >&2; exit 2; }
server=$(cat)
echo "$server" >> "$(dirname "$0")/asked.log"
case "$server" in
  helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"helper-user","Secret":"helper-pass"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-identity"}' ;;
  broken.example.com) echo 'the keychain is locked' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`;

describe('Function: dockerConfigCredentials', () => {
  let dir: string;
  let savedPath: string | undefined;
  let savedDockerConfig: string | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'imagevault-auth-'));
    const helper = path.join(dir, 'docker-credential-test');
    writeFileSync(helper, HELPER);
    chmodSync(helper, 0o755);
    savedPath = process.env.PATH;
    savedDockerConfig = process.env.DOCKER_CONFIG;
    process.env.PATH = `${dir}${path.delimiter}${process.env.PATH ?? ''}`;
  });

  afterAll(() => {
    process.env.PATH = savedPath;
    if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = savedDockerConfig;
    rmSync(dir, { recursive: true, force: true });
  });

  function config(json: unknown): string {
    const file = path.join(mkdtempSync(path.join(dir, 'cfg-')), 'config.json');
    writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
    return file;
  }

  it('decodes auths[registry].auth as base64 user:password', async () => {
    // Prepare
    const file = config({ auths: { '127.0.0.1:5000': { auth: b64('alice:s3:cret') } } });

    // Act
    const cred = await dockerConfigCredentials(file)('127.0.0.1:5000');

    // Assess
    expect(cred).toEqual({ username: 'alice', password: 's3:cret' });
  });

  it('matches keys written with a scheme and path, as docker login stores them', async () => {
    const file = config({ auths: { 'https://registry.example.com/v1/': { auth: b64('bob:pw') } } });
    expect(await dockerConfigCredentials(file)('registry.example.com')).toEqual({
      username: 'bob',
      password: 'pw',
    });
  });

  it('reads identitytoken and registrytoken', async () => {
    const file = config({
      auths: {
        'a.example.com': { identitytoken: 'refresh-me' },
        'b.example.com': { registrytoken: 'bearer-me' },
      },
    });
    const provider = dockerConfigCredentials(file);
    expect(await provider('a.example.com')).toEqual({ identityToken: 'refresh-me' });
    expect(await provider('b.example.com')).toEqual({ registryToken: 'bearer-me' });
  });

  it('finds Docker Hub under https://index.docker.io/v1/ for docker.io', async () => {
    const file = config({ auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') } } });
    expect(await dockerConfigCredentials(file)('docker.io')).toEqual({
      username: 'hubuser',
      password: 'hubpass',
    });
  });

  it('returns undefined for an unknown registry and for a missing config file', async () => {
    const file = config({ auths: { 'a.example.com': { auth: b64('u:p') } } });
    expect(await dockerConfigCredentials(file)('other.example.com')).toBeUndefined();
    expect(
      await dockerConfigCredentials(path.join(dir, 'nope', 'config.json'))('a.example.com'),
    ).toBeUndefined();
  });

  it('defaults to $DOCKER_CONFIG/config.json', async () => {
    const file = config({ auths: { 'env.example.com': { auth: b64('env:pw') } } });
    process.env.DOCKER_CONFIG = path.dirname(file);
    expect(await dockerConfigCredentials()('env.example.com')).toEqual({ username: 'env', password: 'pw' });
  });

  it('runs credHelpers[registry] with the server on stdin', async () => {
    // Prepare
    const file = config({ credHelpers: { 'helped.example.com': 'test' } });

    // Act
    const cred = await dockerConfigCredentials(file)('helped.example.com');

    // Assess
    expect(cred).toEqual({ username: 'helper-user', password: 'helper-pass' });
  });

  it('treats a helper Username of <token> as an identity token, and asks about Docker Hub by its v1 URL', async () => {
    const file = config({ credsStore: 'test' });
    expect(await dockerConfigCredentials(file)('docker.io')).toEqual({ identityToken: 'hub-identity' });
  });

  it('falls back to auths when the credsStore has nothing for the registry', async () => {
    const file = config({ credsStore: 'test', auths: { 'plain.example.com': { auth: b64('p:q') } } });
    expect(await dockerConfigCredentials(file)('plain.example.com')).toEqual({
      username: 'p',
      password: 'q',
    });
    expect(await dockerConfigCredentials(file)('nothing.example.com')).toBeUndefined();
  });

  it('throws CredentialError naming the helper when it fails', async () => {
    const file = config({ credHelpers: { 'broken.example.com': 'test' } });
    const p = dockerConfigCredentials(file)('broken.example.com');
    await expect(p).rejects.toThrow(CredentialError);
    await expect(p).rejects.toThrow(
      'docker-credential-test get broken.example.com: exit 3: the keychain is locked',
    );
  });

  it('throws CredentialError when the helper is not installed', async () => {
    const file = config({ credsStore: 'not-installed' });
    await expect(dockerConfigCredentials(file)('x.example.com')).rejects.toThrow(
      /docker-credential-not-installed get x\.example\.com: .*ENOENT/,
    );
  });

  it('throws CredentialError for a config that is not JSON', async () => {
    const file = config('{ not json');
    await expect(dockerConfigCredentials(file)('x.example.com')).rejects.toThrow(
      /READ file:.*config\.json: invalid JSON/,
    );
  });
});

describe('Function: staticCredentials', () => {
  it('looks up by registry, Docker Hub under any of its names', async () => {
    const provider = staticCredentials({
      'r.example.com': { username: 'u' },
      'https://index.docker.io/v1/': { username: 'hub' },
    });
    expect(await provider('r.example.com')).toEqual({ username: 'u' });
    expect(await provider('docker.io')).toEqual({ username: 'hub' });
    expect(await provider('other.example.com')).toBeUndefined();
  });
});

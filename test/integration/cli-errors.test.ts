/**
 * Every failure the CLI can meet ends the same way: one line on stderr that names what was asked for and why it
 * failed — never a stack trace, never a credential — an `{"error": …}` object on stdout under --json, and the
 * documented exit code. One case per error class the code can throw, through the CLI as a user runs it.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { pushStandardFixtures, type PushedFixtures } from '../../fixtures';
import { testbed } from '../testbed/env';
import { startTokenRegistry, type TokenRegistry } from '../testbed/token-registry';
import { tempDir } from '../unit/helpers';
import { cli, cliJson } from './cli-helpers';

const SECRET = 'hunter2-Sup3rSecret';

interface Case {
  /** The error class the case makes the code throw. */
  error: string;
  why: string;
  args: () => string[];
  env?: () => Record<string, string>;
  exitCode: number;
  /** What the line must name: the image, registry or store the failure is about. */
  names: () => string;
  /** What the line must say about why. */
  says: RegExp;
}

describe('imagevault: one clear line for every failure (real registry)', () => {
  let fx: PushedFixtures;
  let registry: string;
  let store: string;
  let tokenRegistry: TokenRegistry;
  let unavailable: Server;
  let echo: Server;
  let locked: Server;
  let legacy: Server;
  let helperDir: string;
  const saved = { ...process.env };

  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    registry = testbed().registry;
    fx = await pushStandardFixtures(registry, tempDir(), { repoPrefix: 'errs' });
    store = `file://${path.join(tempDir(), 'vault')}`;
    await cliJson('--store', store, 'snapshot', fx.multiLayer.ref, fx.docker.ref, fx.index.ref);
    tokenRegistry = await startTokenRegistry(tempDir());
    // A registry behind a load balancer whose backends are all down.
    unavailable = createServer((_req, res) => res.writeHead(503, { 'retry-after': '0' }).end());
    // A registry that echoes the request's Authorization header in its error body, as some proxies do.
    echo = createServer((req, res) => {
      const auth = req.headers.authorization;
      // A HEAD has no body to echo into: answer 404, so the client asks again with a GET.
      if (auth && req.method === 'HEAD') return void res.writeHead(404).end();
      if (!auth) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="echo"', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: `denied: Authorization: ${auth}` }] }));
    });
    // A registry that wants credentials, which only a credential helper has.
    locked = createServer((_req, res) =>
      res.writeHead(401, { 'www-authenticate': 'Basic realm="locked"' }).end(),
    );
    // A registry still serving a Docker schema 1 manifest (signed JWS, deprecated since 2017).
    legacy = createServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      const schema1 = JSON.stringify({ schemaVersion: 1, name: 'app', tag: '1', fsLayers: [], history: [] });
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
      res.end(req.method === 'HEAD' ? undefined : schema1);
    });
    const [unavailableHost, echoHost, lockedHost, legacyHost] = [
      await listen(unavailable),
      await listen(echo),
      await listen(locked),
      await listen(legacy),
    ];
    // docker's config.json: a wrong password for the token registry, the echo registry's credentials, and a
    // credential helper that fails printing the secret it holds.
    helperDir = tempDir();
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    writeFileSync(
      path.join(helperDir, 'config.json'),
      JSON.stringify({
        auths: {
          [tokenRegistry.registry]: { auth: b64(`${tokenRegistry.username}:${SECRET}`) },
          [echoHost]: { auth: b64(`bob:${SECRET}`) },
        },
        credHelpers: { [lockedHost]: 'leaky' },
      }),
    );
    const helper = path.join(helperDir, 'docker-credential-leaky');
    writeFileSync(helper, `#!/bin/sh\necho "keychain locked, cannot use password=${SECRET}" >&2\nexit 1\n`);
    chmodSync(helper, 0o755);
    Object.assign(process.env, {
      DOCKER_CONFIG: helperDir,
      PATH: `${helperDir}:${process.env.PATH}`,
      UNAVAILABLE: unavailableHost,
      ECHO: echoHost,
      LOCKED: lockedHost,
      LEGACY: legacyHost,
    });
  }, 120_000);

  afterAll(async () => {
    process.env = saved;
    await tokenRegistry.stop();
    unavailable.close();
    echo.close();
    locked.close();
    legacy.close();
  });

  const cases: Case[] = [
    {
      error: 'RegistryError',
      why: 'a tag that does not exist (404 MANIFEST_UNKNOWN)',
      args: () => ['base', `${registry}/errs/multi:nope`],
      exitCode: 1,
      names: () => `${registry}/errs/multi:nope`,
      says: /404 MANIFEST_UNKNOWN/,
    },
    {
      error: 'RegistryError',
      why: 'a wrong password (401 from the token service)',
      args: () => ['base', `${tokenRegistry.registry}/private/app:1`],
      exitCode: 1,
      names: () => `${tokenRegistry.registry}/private/app:1`,
      says: /401/,
    },
    {
      error: 'RegistryError',
      why: 'a registry answering 503 until the retries run out',
      args: () => ['base', `${process.env.UNAVAILABLE}/app:1`],
      exitCode: 1,
      names: () => `${process.env.UNAVAILABLE}/app:1`,
      says: /503 Service Unavailable/,
    },
    {
      error: 'RegistryError',
      why: 'a registry that echoes the Authorization header back (the credential is not printed)',
      args: () => ['base', `${process.env.ECHO}/app:1`],
      exitCode: 1,
      names: () => `${process.env.ECHO}/app:1`,
      says: /403 DENIED: denied: Authorization: Basic \[REDACTED\]/,
    },
    {
      error: 'CredentialError',
      why: 'a credential helper that fails and prints its secret (not printed)',
      args: () => ['base', `${process.env.LOCKED}/app:1`],
      exitCode: 1,
      names: () => `${process.env.LOCKED}/app:1`,
      says: /docker-credential-leaky/,
    },
    {
      error: 'UnsupportedMediaTypeError',
      why: 'a Docker schema 1 manifest (once "404 BLOB_UNKNOWN")',
      args: () => ['base', `${process.env.LEGACY}/app:1`],
      exitCode: 1,
      names: () => `${process.env.LEGACY}/app:1`,
      says: /unsupported manifest media type application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws \(Docker schema 1\): imagevault keeps OCI and Docker schema 2/,
    },
    {
      error: 'InvalidReferenceError',
      why: 'a reference that is not one',
      args: () => ['base', `${registry}/Bad Name!`],
      exitCode: 2,
      names: () => 'Bad Name!',
      says: /Bad Name!/,
    },
    {
      error: 'InvalidDigestError',
      why: 'a digest that is not one',
      args: () => ['--store', store, 'restore', 'errs/multi@sha256:zz', '--to', `${registry}/x`],
      exitCode: 2,
      names: () => 'errs/multi@sha256:zz',
      says: /sha256:zz/,
    },
    {
      error: 'UsageError',
      why: 'history of a repository without a tag',
      args: () => ['--store', store, 'history', 'errs/multi'],
      exitCode: 2,
      names: () => 'errs/multi',
      says: /history needs REPO:TAG/,
    },
    {
      error: 'NotInVaultError',
      why: 'restoring what was never snapshotted',
      args: () => ['--store', store, 'restore', 'errs/never:1', '--to', `${registry}/errs/never`],
      exitCode: 1,
      names: () => 'errs/never:1',
      says: /has never been snapshotted/,
    },
    {
      error: 'TagConflictError',
      why: 'restoring onto a tag that names another image, without --force',
      args: () => ['--store', store, 'restore', 'errs/multi:1', '--to', `${registry}/errs/docker:1`],
      exitCode: 1,
      names: () => 'errs/multi:1',
      says: /points to sha256:/,
    },
    {
      error: 'DockerArchiveError',
      why: 'a docker-archive of a platform the image does not have',
      args: () => [
        '--store',
        store,
        'export',
        'errs/index:1',
        '--docker-archive',
        path.join(tempDir(), 'a.tar'),
        '--platform',
        'linux/s390x',
      ],
      exitCode: 1,
      names: () => 'errs/index:1',
      says: /s390x/,
    },
    {
      error: 'S3ObjectStoreError',
      why: 'an S3 endpoint that refuses connections',
      args: () => ['--store', 's3://no-such-endpoint/vault', 'list'],
      env: () => ({
        AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1',
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE00',
        AWS_SECRET_ACCESS_KEY: SECRET,
        AWS_REGION: 'us-east-1',
        AWS_MAX_ATTEMPTS: '1',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      }),
      exitCode: 1,
      names: () => 's3://no-such-endpoint/vault',
      says: /s3:\/\/no-such-endpoint\/vault/,
    },
    {
      error: 'StoreUrlError',
      why: 'an S3 prefix that climbs out of itself',
      args: () => ['--store', 's3://bucket/../../x', 'list'],
      exitCode: 2,
      names: () => 's3://bucket/../../x',
      says: /"\.\." segment/,
    },
    {
      error: 'StoreUrlError',
      why: 'an empty --store (it would make the working directory a vault)',
      args: () => ['--store', '', 'list'],
      exitCode: 2,
      names: () => '--store ""',
      says: /empty/,
    },
    {
      error: 'KubeconfigError',
      why: 'inventory with a kubeconfig that does not exist',
      args: () => ['--store', store, 'inventory', '--kubernetes', '--kubeconfig', '/nonexistent/kubeconfig'],
      exitCode: 2,
      names: () => '/nonexistent/kubeconfig',
      says: /ENOENT/,
    },
    {
      error: 'NoRegionError',
      why: 'inventory of ECS with no region given or configured',
      args: () => ['--store', store, 'inventory', '--ecs'],
      env: () => ({ AWS_REGION: '', AWS_CONFIG_FILE: '/nonexistent/aws-config', AWS_PROFILE: '' }),
      exitCode: 2,
      names: () => '--region',
      says: /no AWS region/,
    },
    {
      error: 'InventoryRecordError',
      why: 'inventory --show over a running record cut short',
      args: () => {
        const dir = tempDir();
        const records = path.join(dir, 'imagevault/inventory/running/errs/multi/@sha256', 'a'.repeat(64));
        mkdirSync(records, { recursive: true });
        writeFileSync(path.join(records, '0123456789abcdef.json'), '{"repository": "errs/multi"');
        return ['--store', dir, 'inventory', '--show'];
      },
      exitCode: 1,
      names: () => 'imagevault/inventory/running/errs/multi/@sha256/',
      says: /unreadable: .*JSON/,
    },
    {
      error: 'ObjectStoreIoError',
      why: 'a store that is not a directory (ENOTDIR from the file system)',
      args: () => ['--store', '/etc/hostname/vault', 'list'],
      exitCode: 1,
      names: () => '/etc/hostname/vault',
      says: /ENOTDIR/,
    },
  ];

  it.each(cases)('$error: $why', async (c) => {
    const env = c.env?.() ?? {};
    const before = { ...process.env };
    Object.assign(process.env, env);
    try {
      const args = c.args();
      const r = await cli('--json', ...args);
      expect(r.code).toBe(c.exitCode);
      // One line on stderr: the command, its operand and the reason; no stack, no secret.
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^imagevault: /);
      expect(lines[0]).toContain(c.names());
      expect(lines[0]).toMatch(c.says);
      expect(r.stderr).not.toContain(SECRET);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      // The same failure as JSON on stdout.
      const { error } = JSON.parse(r.stdout) as {
        error: { name: string; message: string; exitCode: number };
      };
      expect(error).toMatchObject({
        name: c.error,
        exitCode: c.exitCode,
        message: lines[0].slice('imagevault: '.length),
      });
      expect(r.stdout).not.toContain(SECRET);
    } finally {
      process.env = before;
    }
  });

  it('adds the stack with --verbose, and still no secret', async () => {
    const r = await cli('--verbose', 'base', `${process.env.ECHO}/app:1`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^imagevault: base .*\n.*RegistryError.*\n\s+at /);
    expect(r.stderr).not.toContain(SECRET);
  });

  it('reports a failing image of a snapshot by name and goes on with the rest', async () => {
    const r = await cli('--json', 'snapshot', `${registry}/errs/multi:nope`, fx.docker.ref);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as {
      snapshots: { reference: string }[];
      failures: { reference: string; error: string }[];
    };
    expect(out.snapshots.map((s) => s.reference)).toEqual([`${registry}/errs/docker:1@${fx.docker.digest}`]);
    expect(out.failures).toEqual([
      { reference: `${registry}/errs/multi:nope`, error: expect.stringMatching(/404 MANIFEST_UNKNOWN/) },
    ]);
  });

  it('covers every error class in lib/ that a CLI command can reach', () => {
    // Classes only the Lambdas, the CDK app or internal plumbing can throw, and why the CLI never shows them.
    const notFromTheCli: Record<string, string> = {
      EventError: 'EventBridge/SQS events: Lambdas only',
      InvalidEventError: 'EventBridge/SQS events: Lambdas only',
      EnqueueError: 'SQS: the reconcile Lambda only',
      EcrRepositoryError: 'ECR control plane: needs an AWS account (restore into ECR is tested with a mock)',
      ScanFindingsError: 'ECR scan findings: the scan Lambda only',
      InvalidPutImageEventError: 'CloudTrail events: the identity Lambda only',
      InvalidScanEventError: 'scan events: the scan Lambda only',
      LogContentionError: 'provenance log contention: retried inside appendFor',
      WriteConflictError:
        "AWS S3's 409 on racing conditional writes: radosgw never answers it (tested with a mock)",
      RecordNotStartedError: 'SQS batches out of time: the snapshot Lambda only',
      StreamUploadError:
        'internal to the S3 store: putStream turns it into S3ObjectStoreError, naming the key',
      ImageVaultConfigError: 'CDK construct props: synth time',
      ObjectNotFoundError: 'mapped by every caller (to NotInVaultError or a missing-content report)',
      ObjectExistsError: 'create-only writes: mapped by the provenance log',
      UnsupportedOperationError: 'Object Lock on a directory: only the Lambdas lock entries',
      OciError: 'base class: its subclasses are tested',
      VaultError: 'base class: NotInVaultError is tested',
      RestoreError: 'base class: TagConflictError is tested',
      ProvenanceError: 'base class',
      DigestMismatchError:
        'reported per image by snapshot and verify (bad-source tests), never thrown to the top',
      InvalidManifestError: 'reported per image by snapshot (bad-source tests)',
      CopyError: 'wraps a registry or store failure: reported per image by snapshot and restore --all',
      TimeoutSettingError:
        'a bad IMAGEVAULT_TIMEOUT / IMAGEVAULT_IDLE_TIMEOUT: the CLI reports it as a usage error (faults tests)',
      HoldError: 'hold/release: the command maps it to a usage error (hold tests)',
      PolicyError: 'a bad retention policy: the command maps it to a usage error (retention tests)',
      GcError: 'gc on a store that cannot delete, or a skewed clock: the command maps it to a usage error',
      GraphReadError: 'gc with a kept image it cannot read: one line, exit 1 (gc tests)',
      WriteSessionError:
        'a snapshot past its cap or with a skewed clock: per image, like any failure (gc tests)',
    };
    const declared = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts'))
          for (const m of readFileSync(p, 'utf8').matchAll(/export class (\w+) extends \w*Error\b/g))
            declared.add(m[1]);
      }
    };
    walk(path.resolve(__dirname, '../../lib'));
    const tested = new Set(cases.map((c) => c.error));
    const uncovered = [...declared].filter((name) => !tested.has(name) && !(name in notFromTheCli));
    expect(uncovered).toEqual([]);
  });
});

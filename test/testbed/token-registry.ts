import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { createServer as createNetServer } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';

/*
 * A registry that behaves like a private Docker Hub: the real docker-registry (distribution 2.8) with `auth: token`,
 * a tiny token server signing ES256 JWTs with a throwaway self-signed key (distribution verifies them against the
 * certificate in `rootcertbundle`, by libtrust key ID), and, in front, a counting proxy that can misbehave the way
 * public registries do (no Docker-Content-Digest, 429 with Retry-After, `ratelimit-remaining`).
 */

const run = promisify(execFile);
const SERVICE = 'imagevault-upstream';
const ISSUER = 'imagevault-test-token-issuer';

export interface TokenRegistry {
  /** host:port of the registry itself (token auth, no proxy). */
  registry: string;
  /** The user the token server accepts (Basic, on the token request). */
  username: string;
  password: string;
  /** Tokens issued, with the scopes asked for. */
  tokens: { subject: string; scopes: string[] }[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** libtrust's key ID (what distribution matches a JWT `kid` against): base32 of SHA-256(SPKI DER)[:30], 4-char groups. */
function libtrustKeyId(spkiDer: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

const b64url = (v: Buffer | string) => Buffer.from(v).toString('base64url');

/** Starts docker-registry with token auth and its token server; everything lives in `dir`. */
export async function startTokenRegistry(
  dir: string,
  options: { username?: string; password?: string } = {},
): Promise<TokenRegistry> {
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-subj',
    '/CN=imagevault test token issuer',
    '-days',
    '2',
  ]);
  const key = createPrivateKey(readFileSync(keyFile));
  const kid = libtrustKeyId(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const username = options.username ?? 'upstream-reader';
  const password = options.password ?? randomBytes(8).toString('hex');
  const tokens: TokenRegistry['tokens'] = [];

  const tokenServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const auth = req.headers.authorization ?? '';
    const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    if (auth !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad or missing credentials' }] }));
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    const access = scopes.flatMap((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop() ?? '';
      return type === 'repository' ? [{ type, name: rest.join(':'), actions: actions.split(',') }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: ISSUER,
      sub: username,
      aud: SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid }))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    tokens.push({ subject: username, scopes });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        token: `${signingInput}.${b64url(signature)}`,
        expires_in: 300,
        issued_at: new Date().toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
  const tokenPort = (tokenServer.address() as { port: number }).port;

  const port = await freePort();
  const config = path.join(dir, 'registry.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: {level: warn, accesslog: {disabled: true}}',
      'storage:',
      `  filesystem: {rootdirectory: ${path.join(dir, 'data')}}`,
      '  delete: {enabled: true}',
      '  maintenance: {uploadpurging: {enabled: false}}',
      `http: {addr: "127.0.0.1:${port}", secret: ${randomBytes(8).toString('hex')}}`,
      'auth:',
      '  token:',
      `    realm: http://127.0.0.1:${tokenPort}/token`,
      `    service: ${SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${certFile}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const registry = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`http://${registry}/v2/`);
      if (res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      tokenServer.close();
      child.kill();
      throw new Error(`docker-registry with token auth did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    registry,
    username,
    password,
    tokens,
    stop: async () => {
      child.kill();
      await new Promise<void>((resolve) => tokenServer.close(() => resolve()));
    },
  };
}

/** Copies `oci:DIR:NAME` into the token-auth registry with its credentials (skopeo does the token dance). */
export async function pushWithCredentials(
  layoutDir: string,
  name: string,
  target: string,
  reg: TokenRegistry,
): Promise<void> {
  await run('skopeo', [
    'copy',
    '--quiet',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    '--dest-creds',
    `${reg.username}:${reg.password}`,
    `oci:${layoutDir}:${name}`,
    `docker://${target}`,
  ]);
}

export interface ProxiedRequest {
  method: string;
  path: string;
  status: number;
}

/** What the proxy does to the next manifest responses; tests flip these between checks. */
export interface ProxyBehaviour {
  /** Remove Docker-Content-Digest from manifest responses (as some registries and mirrors do on HEAD). */
  stripDigest: boolean;
  /** Answer this many manifest requests with 429 and `Retry-After: 1` before forwarding again. */
  tooManyRequests: number;
  /** Sent as `ratelimit-remaining` on manifest responses, Docker Hub style (`95;w=21600`). */
  rateLimitRemaining?: string;
  /**
   * When set, the proxy pages `tags/list` itself, as distribution 3, Docker Hub and ECR do (distribution 2.8 ignores
   * `n` and answers in one page): at most min(n, this) tags after `last`, in the registry's order, with
   * `Link: <…?n=…&last=…>; rel="next"` while more remain.
   */
  tagPageLimit?: number;
  /** Answer this many `tags/list` requests with 429 and `Retry-After: 1` before forwarding again. */
  tagListTooManyRequests?: number;
  /** Sent as `ratelimit-remaining` on `tags/list` responses. */
  tagListRateLimitRemaining?: string;
}

export interface CountingProxy {
  /** host:port to use as the registry. */
  address: string;
  requests: ProxiedRequest[];
  behaviour: ProxyBehaviour;
  /** The manifest requests so far (method and path), the ones a rate limit counts. */
  manifestRequests(): ProxiedRequest[];
  reset(): void;
  close(): Promise<void>;
}

/** A loopback HTTP proxy in front of `target` (host:port) that records every request. */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const requests: ProxiedRequest[] = [];
  const behaviour: ProxyBehaviour = { stripDigest: false, tooManyRequests: 0 };
  const [host, port] = target.split(':');
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://proxy').pathname;
    const manifest = p.includes('/manifests/');
    const tagList = p.endsWith('/tags/list');
    if (tagList && (behaviour.tagListTooManyRequests ?? 0) > 0) {
      behaviour.tagListTooManyRequests!--;
      requests.push({ method: req.method ?? '', path: p, status: 429 });
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      return;
    }
    if (tagList && behaviour.tagPageLimit !== undefined) {
      pageTags(req, res, p, behaviour, requests);
      return;
    }
    if (manifest && behaviour.tooManyRequests > 0) {
      behaviour.tooManyRequests--;
      requests.push({ method: req.method ?? '', path: p, status: 429 });
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      return;
    }
    const upstream = http.request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        const headers = { ...up.headers };
        if (manifest && behaviour.stripDigest) delete headers['docker-content-digest'];
        if (manifest && behaviour.rateLimitRemaining !== undefined)
          headers['ratelimit-remaining'] = behaviour.rateLimitRemaining;
        if (tagList && behaviour.tagListRateLimitRemaining !== undefined)
          headers['ratelimit-remaining'] = behaviour.tagListRateLimitRemaining;
        requests.push({ method: req.method ?? '', path: p, status: up.statusCode ?? 0 });
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  /** One page of the registry's whole tag list (asked with the client's own authorization). */
  function pageTags(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    p: string,
    b: ProxyBehaviour,
    log: ProxiedRequest[],
  ): void {
    const query = new URL(req.url ?? '/', 'http://proxy').searchParams;
    const upstream = http.request(
      { host, port: Number(port), method: 'GET', path: p, headers: req.headers },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          log.push({ method: req.method ?? '', path: p, status: up.statusCode ?? 0 });
          const headers: http.OutgoingHttpHeaders = { ...up.headers };
          delete headers['content-length'];
          delete headers['transfer-encoding'];
          if (b.tagListRateLimitRemaining !== undefined)
            headers['ratelimit-remaining'] = b.tagListRateLimitRemaining;
          if (up.statusCode !== 200) {
            res.writeHead(up.statusCode ?? 502, headers);
            res.end(Buffer.concat(chunks));
            return;
          }
          const all = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; tags: string[] };
          const last = query.get('last');
          const n = Math.min(Number(query.get('n') ?? b.tagPageLimit), b.tagPageLimit!);
          const sorted = [...all.tags].sort();
          const rest = last === null ? sorted : sorted.filter((t) => t > last);
          const page = rest.slice(0, n);
          if (rest.length > n)
            headers.link = `<${p}?n=${n}&last=${encodeURIComponent(page[page.length - 1])}>; rel="next"`;
          const body = Buffer.from(JSON.stringify({ name: all.name, tags: page }));
          headers['content-length'] = String(body.length);
          res.writeHead(200, headers);
          res.end(body);
        });
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    upstream.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    address,
    requests,
    behaviour,
    manifestRequests: () => requests.filter((r) => r.path.includes('/manifests/')),
    reset: () => requests.splice(0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

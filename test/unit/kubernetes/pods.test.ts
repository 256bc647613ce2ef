import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Inventory } from '../../../lib/content/inventory';
import { KubeconfigError, kubernetesScanner, workloadOf } from '../../../lib/kubernetes/pods';
import { scanInventory } from '../../../lib/services/inventory';
import { kubeApiserverCert } from '../../testbed/kube-apiserver-cert';
import { tempDir, tempVault } from '../helpers';

/*
 * A Kubernetes API server on loopback, over TLS with a certificate made here, answering the pod list endpoint from
 * recorded pages (test/unit/kubernetes/recorded, with `continue` tokens) to the bearer token of one user only. The
 * scanner reaches it through a kubeconfig written here, by the real client.
 */
const TOKEN = 'k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20v';
const pages = [1, 2, 3].map((n) => readFileSync(path.join(__dirname, 'recorded', `pods-${n}.json`), 'utf8'));
const tokens = pages.map((p) => JSON.parse(p).metadata.continue as string | undefined);
const digest = (byte: string) => `sha256:${byte.repeat(32)}`;

let server: Server;
let kubeconfig: string;
const requests: URL[] = [];

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
}

beforeAll(async () => {
  const dir = tempDir('imagevault-k8s-');
  const tls = kubeApiserverCert();
  server = createServer(tls, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    requests.push(url);
    res.setHeader('content-type', 'application/json');
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401).end(status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (url.pathname !== '/api/v1/pods' || url.searchParams.get('limit') !== '2') {
      res
        .writeHead(404)
        .end(status(404, 'NotFound', `the server could not find ${url.pathname}?${url.search}`));
      return;
    }
    if (url.searchParams.get('fieldSelector') !== 'status.phase!=Succeeded,status.phase!=Failed') {
      res.writeHead(400).end(status(400, 'BadRequest', 'expected the live-pod field selector'));
      return;
    }
    const at = url.searchParams.has('continue') ? tokens.indexOf(url.searchParams.get('continue')!) + 1 : 0;
    if (at < 0 || at >= pages.length) {
      res.writeHead(410).end(status(410, 'Expired', 'The provided continue parameter is too old'));
      return;
    }
    res.writeHead(200).end(pages[at]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const ca = tls.cert.toString('base64');
  kubeconfig = path.join(dir, 'config');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'staging',
      clusters: [
        { name: 'prod', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': ca } },
        { name: 'untrusted', cluster: { server: `https://127.0.0.1:${port}` } },
      ],
      users: [
        { name: 'prod-admin', user: { token: TOKEN } },
        { name: 'someone', user: { token: 'not-the-token' } },
      ],
      contexts: [
        { name: 'prod-eks', context: { cluster: 'prod', user: 'prod-admin' } },
        { name: 'staging', context: { cluster: 'prod', user: 'someone' } },
        { name: 'no-ca', context: { cluster: 'untrusted', user: 'prod-admin' } },
      ],
    }),
  );
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('Function: kubernetesScanner', () => {
  it('reads every page of pods through the chosen context and places each imageID by workload', async () => {
    // Prepare
    requests.length = 0;
    const vault = await tempVault();
    // Act
    const report = await scanInventory({
      vault,
      scanners: [kubernetesScanner({ kubeconfig, context: 'prod-eks', pageSize: 2 })],
    });
    // Assess
    expect(requests.map((u) => u.searchParams.get('continue'))).toEqual([null, tokens[0], tokens[1]]);
    expect(report.sources[0]).toMatchObject({ source: 'kubernetes:prod-eks', ok: true, sightings: 7 });
    expect(report.running.map((r) => `${r.repository}@${r.digest.slice(7, 9)} ${r.where.join(',')}`)).toEqual(
      [
        'shop/api@1f kubernetes:prod-eks/shop/Deployment/api',
        'shop/migrate@a1 kubernetes:prod-eks/shop/Deployment/api',
        'library/busybox@b2 kubernetes:prod-eks/shop/Deployment/api',
        'library/postgres@c3 kubernetes:prod-eks/data/StatefulSet/postgres',
        // A bare imageID is the node's local id: the spec's pinned digest names the image instead.
        'prometheus/node-exporter@d4 kubernetes:prod-eks/monitoring/DaemonSet/node-exporter',
      ],
    );
    expect(report.sources[0].unresolved).toEqual([
      {
        image: digest('f6'),
        where: 'kubernetes:prod-eks/default/Pod/scratchpad',
        reason: `${digest('f6')} names no repository (the runtime's local image id)`,
      },
      {
        image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/api:1.8.3',
        where: 'kubernetes:prod-eks/shop/Deployment/api',
        reason: 'the platform names no image yet (not pulled)',
      },
    ]);
    const [api] = await new Inventory(vault.store).where('shop/api', digest('1f'));
    expect(api.placement).toMatchObject({
      cluster: 'prod-eks',
      namespace: 'shop',
      containers: ['api'],
      instances: ['api-7d9f8c6b54-k8r2m', 'api-7d9f8c6b54-xq2zp'],
    });
  });

  it("uses the kubeconfig's current context when none is given, and reports the API's refusal in one line", async () => {
    const report = await scanInventory({
      vault: await tempVault(),
      scanners: [kubernetesScanner({ kubeconfig, pageSize: 2 })],
    });
    expect(report.sources).toEqual([
      {
        source: 'kubernetes:staging',
        ok: false,
        sightings: 0,
        error: 'list pods: HTTP 401: Unauthorized',
        unresolved: [],
      },
    ]);
  });

  it('refuses a server whose certificate the kubeconfig does not trust', async () => {
    const scanner = kubernetesScanner({ kubeconfig, context: 'no-ca', pageSize: 2 });
    await expect(scanner.scan()).rejects.toThrow(/^list pods: .*(self.signed|certificate)/);
  });

  it('names the contexts a kubeconfig has when asked for another', () => {
    expect(() => kubernetesScanner({ kubeconfig, context: 'prod' })).toThrow(KubeconfigError);
    expect(() => kubernetesScanner({ kubeconfig, context: 'prod' })).toThrow(
      'kubeconfig has no context "prod" (it has: prod-eks, staging, no-ca)',
    );
  });
});

describe('Function: workloadOf', () => {
  it('names a ReplicaSet of another name than Deployment-hash as the ReplicaSet', () => {
    expect(
      workloadOf({
        metadata: {
          name: 'x-1',
          labels: { 'pod-template-hash': 'abc' },
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'hand-made', uid: 'u', controller: true },
          ],
        },
      }),
    ).toBe('ReplicaSet/hand-made');
  });
});

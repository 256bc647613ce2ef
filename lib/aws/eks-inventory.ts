import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { DescribeClusterCommand, type EKSClient } from '@aws-sdk/client-eks';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, Checksum, Provider, SourceData } from '@smithy/types';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesPodScanner, POD_PAGE_SIZE } from '../kubernetes/pods';
import type { InventoryScanner, SourceScan } from '../services/inventory';

/*
 * An EKS cluster as a source of the in-use inventory, for the inventory Lambda: the cluster's endpoint and CA from
 * eks:DescribeCluster, and a bearer token in EKS's own scheme (what `aws eks get-token` prints): a presigned STS
 * GetCallerIdentity URL that names the cluster in the signed `x-k8s-aws-id` header, base64url-encoded after
 * `k8s-aws-v1.`. The API server asks STS who signed it and maps that role through the cluster's access entries, so
 * no secret is stored anywhere. The pods are then listed as for any cluster (lib/kubernetes/pods.ts).
 */

/** The prefix of an EKS bearer token. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** The header that binds a token to one cluster (aws-iam-authenticator's `clusterIDHeader`). */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/**
 * The presigned URL's lifetime, as `aws eks get-token` signs it. The API server accepts a token for 15 minutes
 * from its signing time, which bounds one scan; the scanner signs a fresh token per scan.
 */
const PRESIGN_SECONDS = 60;

/** SHA-256 (or its HMAC with a key) for the signer, from node:crypto. */
class NodeSha256 implements Checksum {
  private hash: Hash | Hmac;

  private readonly secret?: Uint8Array | string;

  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.hash = this.fresh();
  }

  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }

  update(data: Uint8Array | string): void {
    this.hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }

  reset(): void {
    this.hash = this.fresh();
  }
}

const bytes = (d: SourceData): Uint8Array | string =>
  typeof d === 'string'
    ? d
    : ArrayBuffer.isView(d)
      ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
      : new Uint8Array(d);

/** A bearer token for the API server of EKS cluster `cluster` in `region`, signed with `credentials`. */
export async function eksToken(
  cluster: string,
  region: string,
  credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>,
  signingDate: Date = new Date(),
): Promise<string> {
  const hostname = `sts.${region}.amazonaws.com`;
  const signer = new SignatureV4({ service: 'sts', region, credentials, sha256: NodeSha256 });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host: hostname, [CLUSTER_ID_HEADER]: cluster },
    },
    // The cluster header must stay a signed header, not move into the query: that is what binds the token.
    { expiresIn: PRESIGN_SECONDS, signingDate, unhoistableHeaders: new Set([CLUSTER_ID_HEADER]) },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `${EKS_TOKEN_PREFIX}${Buffer.from(`https://${hostname}/?${query}`).toString('base64url')}`;
}

export interface EksClusterScannerOptions {
  /** The cluster's name in its region. */
  readonly cluster: string;
  readonly region: string;
  /** @default POD_PAGE_SIZE */
  readonly pageSize?: number;
}

/**
 * The pods of one EKS cluster. Named `kubernetes:<cluster name>`, as the CLI names a cluster by its kubeconfig
 * context: give the context the cluster's name, and the Lambda's and the CLI's scans are one source.
 */
export class EksClusterScanner implements InventoryScanner {
  readonly source: string;

  constructor(
    private readonly client: EKSClient,
    private readonly options: EksClusterScannerOptions,
  ) {
    this.source = `kubernetes:${options.cluster}`;
  }

  async scan(): Promise<SourceScan> {
    const { cluster, region } = this.options;
    let endpoint: string | undefined;
    let ca: string | undefined;
    try {
      const out = await this.client.send(new DescribeClusterCommand({ name: cluster }));
      endpoint = out.cluster?.endpoint;
      ca = out.cluster?.certificateAuthority?.data;
    } catch (e) {
      throw new Error(
        `eks:DescribeCluster ${cluster} in ${region}: ${(e as Error).name}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    if (!endpoint || !ca)
      throw new Error(
        `eks:DescribeCluster ${cluster} in ${region}: no endpoint or certificate yet (is it ACTIVE?)`,
      );
    const token = await eksToken(cluster, region, this.client.config.credentials);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: cluster, server: endpoint, caData: ca, skipTLSVerify: false }],
      users: [{ name: 'imagevault-inventory', token }],
      contexts: [{ name: cluster, cluster, user: 'imagevault-inventory' }],
      currentContext: cluster,
    });
    return new KubernetesPodScanner(kc, cluster, this.options.pageSize ?? POD_PAGE_SIZE).scan();
  }
}

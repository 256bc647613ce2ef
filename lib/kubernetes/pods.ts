import { CoreV1Api, KubeConfig, type V1ContainerStatus, type V1Pod } from '@kubernetes/client-node';
import type { InventoryScanner, RunningImage, SourceScan } from '../services/inventory';

/*
 * What runs on a Kubernetes cluster (EKS or any other): every pod's container, init container and ephemeral
 * container statuses, by `imageID` — the digest the node's runtime actually pulled, whatever tag the spec named.
 * This module carries the Kubernetes client (ESM, ~50 MB unpacked): it is loaded only when a cluster is scanned,
 * and the CLI bundles it apart (scripts/build-cli.ts), so no other command loads it.
 */

/**
 * Pods per list request. The API server pages with `limit`/`continue`; 500 is kubectl's own chunk size, and keeps
 * one answer to a few MB however many pods the cluster has.
 */
export const POD_PAGE_SIZE = 500;

/** Pods that ran and ended hold no image any more; every other phase (Pending, Running, Unknown) may pull one. */
const LIVE_PODS = 'status.phase!=Succeeded,status.phase!=Failed';

export interface KubernetesScannerOptions {
  /** A kubeconfig file. @default KUBECONFIG, else ~/.kube/config, else the in-cluster service account */
  readonly kubeconfig?: string;
  /** The kubeconfig context to use. @default the kubeconfig's current context */
  readonly context?: string;
  /** @default POD_PAGE_SIZE */
  readonly pageSize?: number;
}

/** Thrown when the kubeconfig cannot be read or names no such context. */
export class KubeconfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeconfigError';
  }
}

/** A scanner for the cluster the kubeconfig (and `context`) points at. */
export function kubernetesScanner(options: KubernetesScannerOptions = {}): KubernetesPodScanner {
  const kc = new KubeConfig();
  try {
    if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new KubeconfigError(`kubeconfig ${options.kubeconfig ?? '(default)'}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new KubeconfigError(
        `kubeconfig has no context "${options.context}" (it has: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  const context = kc.getCurrentContext();
  if (!context || !kc.getCurrentCluster())
    throw new KubeconfigError(`kubeconfig ${options.kubeconfig ?? '(default)'} names no current cluster`);
  return new KubernetesPodScanner(kc, context, options.pageSize ?? POD_PAGE_SIZE);
}

export class KubernetesPodScanner implements InventoryScanner {
  readonly source: string;
  private readonly api: CoreV1Api;

  constructor(
    kc: KubeConfig,
    /** The context's name: how the cluster is named in the inventory. */
    readonly cluster: string,
    private readonly pageSize = POD_PAGE_SIZE,
  ) {
    this.source = `kubernetes:${cluster}`;
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async scan(): Promise<SourceScan> {
    const running: RunningImage[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.api.listPodForAllNamespaces({
          limit: this.pageSize,
          fieldSelector: LIVE_PODS,
          ...(token ? { _continue: token } : {}),
        });
      } catch (e) {
        throw new Error(`list pods: ${apiError(e)}`, { cause: e });
      }
      for (const pod of page.items) running.push(...this.images(pod));
      token = page.metadata?._continue || undefined;
    } while (token);
    return { running, errors: [] };
  }

  private images(pod: V1Pod): RunningImage[] {
    const spec = new Map<string, string>();
    for (const c of [
      ...(pod.spec?.containers ?? []),
      ...(pod.spec?.initContainers ?? []),
      ...(pod.spec?.ephemeralContainers ?? []),
    ])
      if (c.image) spec.set(c.name, c.image);
    const statuses: V1ContainerStatus[] = [
      ...(pod.status?.containerStatuses ?? []),
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.ephemeralContainerStatuses ?? []),
    ];
    const placement = {
      kind: 'kubernetes' as const,
      cluster: this.cluster,
      namespace: pod.metadata?.namespace ?? 'default',
      workload: workloadOf(pod),
      instances: pod.metadata?.name ? [pod.metadata.name] : [],
    };
    return statuses.map((s) => ({
      image: s.imageID ?? '',
      requested: spec.get(s.name) ?? s.image,
      placement: { ...placement, containers: [s.name] },
    }));
  }
}

/**
 * The workload a pod belongs to, by its controller: a ReplicaSet's pods are a Deployment's when the ReplicaSet's
 * name is the Deployment's plus the pod's `pod-template-hash` (as the Deployment controller names them).
 */
export function workloadOf(pod: V1Pod): string {
  const owner =
    pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!owner) return `Pod/${pod.metadata?.name ?? '?'}`;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`))
    return `Deployment/${owner.name.slice(0, -hash.length - 1)}`;
  return `${owner.kind}/${owner.name}`;
}

/**
 * One line for a failed API call: the HTTP status and the server's own message (a Status body's `message`, else
 * the client's word for the status), never the response headers the client's own message carries.
 */
function apiError(e: unknown): string {
  const x = e as { code?: number; body?: unknown; message?: string };
  if (typeof x.code !== 'number' || x.code < 100) return (x.message ?? String(e)).split('\n')[0];
  let message: string | undefined;
  try {
    const body = typeof x.body === 'string' ? JSON.parse(x.body) : x.body;
    message = (body as { message?: string } | undefined)?.message;
  } catch {
    message = typeof x.body === 'string' ? x.body.slice(0, 200) : undefined;
  }
  const word = /\nMessage: ([^\n]*)/.exec(x.message ?? '')?.[1];
  message ??= word && word !== 'Unknown API Status Code!' ? word : undefined;
  return `HTTP ${x.code}${message ? `: ${message}` : ''}`;
}

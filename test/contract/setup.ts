/**
 * Jest setup (setupFilesAfterEnv) of every test file: records the AWS calls each Lambda handler makes (./recorder.ts)
 * and, when the file is done, checks each against the deployed policies (./check-calls.ts). Everything here is lazy:
 * a module is wrapped only when a test loads it, so files that use no AWS SDK pay nothing.
 */
import type { Principal } from './recorder';

/** The SDK client modules the project uses, and the service id each records its calls under. */
const SDK_MODULES: Record<string, string> = {
  '@aws-sdk/client-s3': 'S3',
  '@aws-sdk/client-sns': 'SNS',
  '@aws-sdk/client-sqs': 'SQS',
  '@aws-sdk/client-ecr': 'ECR',
  '@aws-sdk/client-secrets-manager': 'Secrets Manager',
  '@aws-sdk/client-ecs': 'ECS',
  '@aws-sdk/client-lambda': 'Lambda',
  '@aws-sdk/client-eks': 'EKS',
};

/**
 * A module whose `*Command` classes record each command made: a subclass with the same name, so that
 * `instanceof`, aws-sdk-client-mock's `.on(Command)` and error messages see no difference.
 */
function recordingModule(moduleName: string, service: string): object {
  const real = jest.requireActual<Record<string, unknown>>(moduleName);
  const { record } = jest.requireActual<typeof import('./recorder')>('./recorder');
  const wrapped = new Map<string | symbol, unknown>();
  const proxy: Record<string, unknown> = new Proxy(real, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof key === 'string' && key.startsWith('paginate') && typeof value === 'function')
        return paginator(value as Paginator);
      if (typeof key !== 'string' || !key.endsWith('Command') || typeof value !== 'function') return value;
      let sub = wrapped.get(key);
      if (!sub) {
        const Real = value as new (input: Record<string, unknown>) => object;
        const operation = key.replace(/Command$/, '');
        const Recording = class extends Real {
          constructor(input: Record<string, unknown>) {
            super(input);
            record(service, operation, input);
          }
        };
        Object.defineProperty(Recording, 'name', { value: key });
        wrapped.set(key, (sub = Recording));
      }
      return sub;
    },
  });
  /**
   * A paginator makes its commands from the module's own class, not the recording one: its `withCommand` hook swaps
   * each for the recording class (recorded, and matched by a mock's `.on(Command)` as the test's import is).
   */
  type Paginator = (config: { withCommand?: unknown }, ...rest: unknown[]) => unknown;
  const paginator =
    (real: Paginator): Paginator =>
    (config, ...rest) =>
      real(
        {
          ...config,
          withCommand: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
            const Recording = proxy[command.constructor.name] as new (
              input: Record<string, unknown>,
            ) => object;
            return new Recording(command.input);
          },
        },
        ...rest,
      );
  return proxy;
}

for (const [moduleName, service] of Object.entries(SDK_MODULES)) {
  jest.mock(moduleName, () => recordingModule(moduleName, service));
}

/**
 * Registry requests: in the handlers' tests the test bed's registry stands in for ECR's data plane, so each request a
 * principal makes to it is an ECR call authorized by IAM (BatchGetImage for a manifest, GetDownloadUrlForLayer for a
 * blob…). Recorded as service `ECR registry` with the method and path.
 */
jest.mock('../../lib/registry/http', () => {
  const real = jest.requireActual<typeof import('../../lib/registry/http')>('../../lib/registry/http');
  const { record } = jest.requireActual<typeof import('./recorder')>('./recorder');
  return {
    ...real,
    request: (url: URL, options: Parameters<typeof real.request>[1]) => {
      record('ECR registry', options.method ?? 'GET', { path: url.pathname });
      return real.request(url, options);
    },
  };
});

/** Each handler factory's handlers run as their function's principal. */
function principalModule(modulePath: string, factories: Record<string, Principal>): object {
  const real = jest.requireActual<Record<string, unknown>>(modulePath);
  const { asPrincipal } = jest.requireActual<typeof import('./recorder')>('./recorder');
  const out: Record<string, unknown> = { ...real };
  for (const [name, principal] of Object.entries(factories)) {
    const factory = real[name] as (...a: unknown[]) => (...b: unknown[]) => unknown;
    out[name] = (...a: unknown[]) => {
      const handler = factory(...a);
      return (...b: unknown[]) => asPrincipal(principal, () => handler(...b));
    };
  }
  return out;
}

jest.mock('../../lib/aws/handlers/snapshot', () =>
  principalModule('../../lib/aws/handlers/snapshot', { createSnapshotHandler: 'snapshot' }),
);
jest.mock('../../lib/aws/handlers/upstream', () =>
  principalModule('../../lib/aws/handlers/upstream', { createUpstreamCheckHandler: 'upstream' }),
);
jest.mock('../../lib/aws/handlers/identity', () =>
  principalModule('../../lib/aws/handlers/identity', { createIdentityHandler: 'identity' }),
);
jest.mock('../../lib/aws/handlers/scan', () =>
  principalModule('../../lib/aws/handlers/scan', { createScanHandler: 'scan' }),
);
jest.mock('../../lib/aws/handlers/inventory', () =>
  principalModule('../../lib/aws/handlers/inventory', { createInventoryHandler: 'inventory' }),
);
jest.mock('../../lib/aws/handlers/retention', () =>
  principalModule('../../lib/aws/handlers/retention', { createRetentionHandler: 'retention' }),
);
jest.mock('../../lib/services/reconcile', () => {
  const real = jest.requireActual<typeof import('../../lib/services/reconcile')>(
    '../../lib/services/reconcile',
  );
  const { asPrincipal } = jest.requireActual<typeof import('./recorder')>('./recorder');
  class Reconciler extends real.Reconciler {
    override run(...a: Parameters<InstanceType<typeof real.Reconciler>['run']>) {
      return asPrincipal('reconcile', () => super.run(...a));
    }
  }
  return { ...real, Reconciler };
});

afterAll(async () => {
  const { recordedCalls } = jest.requireActual<typeof import('./recorder')>('./recorder');
  const calls = recordedCalls();
  if (calls.length === 0) return;
  const { checkRecordedCalls } = jest.requireActual<typeof import('./check-calls')>('./check-calls');
  const { requests } = await checkRecordedCalls(calls);
  // For the figures of a closing note: IMAGEVAULT_CONTRACT_SUMMARY=<file> appends one JSON line per test file.
  const summary = process.env.IMAGEVAULT_CONTRACT_SUMMARY;
  if (summary) {
    const { appendFileSync } = jest.requireActual<typeof import('node:fs')>('node:fs');
    const operations = [...new Set(calls.map((c) => `${c.principal} ${c.service}:${c.operation}`))].sort();
    appendFileSync(
      summary,
      `${JSON.stringify({ file: expect.getState().testPath, calls: calls.length, requests, operations })}\n`,
    );
  }
});

import { SelfTest } from '../../services/selftest';
import type { SelfTestAws, SelfTestDeps, SelfTestReport, StepResult } from '../../services/selftest-model';
import { progressMode, type CommandContext } from '../context';
import { ExitCode } from '../exit';
import { out } from './format';

export interface AwsSelftestCommandOptions {
  stack: string;
  region?: string;
  replicaStack?: string;
  replicaRegion?: string;
  repository?: string;
  /** Seconds. */
  snapshotTimeout: number;
  replicationTimeout: number;
  alertTimeout: number;
  json?: boolean;
}

/**
 * `imagevault aws selftest`: checks a deployment end to end (push, snapshot, replica, restore, test alert,
 * schedules), reports each step PASS/FAIL/SKIP with the fix, and exits 1 when one failed.
 */
export async function awsSelftestCommand(ctx: CommandContext, cmd: AwsSelftestCommandOptions): Promise<void> {
  await runSelfTest(ctx, cmd, await awsDeps(ctx));
}

/** The command with its AWS and S3 access handed in (tests point them at mocks and the test bed). */
export async function runSelfTest(
  ctx: CommandContext,
  cmd: AwsSelftestCommandOptions,
  deps: SelfTestDeps,
  pollMs?: number,
): Promise<SelfTestReport> {
  const opts = ctx.opts();
  const json = Boolean(opts.json || cmd.json);
  const progress = progressMode({ ...opts, json }) === 'none' ? undefined : (line: string) => say(line);
  const report = await new SelfTest(deps, {
    stack: cmd.stack,
    region: cmd.region,
    replicaStack: cmd.replicaStack,
    replicaRegion: cmd.replicaRegion,
    repository: cmd.repository,
    snapshotTimeoutMs: cmd.snapshotTimeout * 1000,
    replicationTimeoutMs: cmd.replicationTimeout * 1000,
    alertTimeoutMs: cmd.alertTimeout * 1000,
    ...(pollMs !== undefined ? { pollMs } : {}),
    progress,
  }).run();
  out(json, report, () => text(report));
  if (!report.ok) process.exitCode = ExitCode.Failed;
  return report;
}

function say(line: string): void {
  process.stderr.write(`selftest: ${line}\n`);
}

/** The SDK adapter and S3 stores, loaded only now: `--help` and every other command never load these clients. */
async function awsDeps(ctx: CommandContext): Promise<SelfTestDeps> {
  const [{ AwsSelfTest }, { ecrRegistryHost }, s3] = await Promise.all([
    import('../../aws/selftest'),
    import('../../aws/ecr-auth'),
    import('../../content/s3'),
  ]);
  const { S3Client } = await import('@aws-sdk/client-s3');
  const aws: SelfTestAws = new AwsSelfTest();
  return {
    aws,
    registries: ctx.registries(),
    registryHost: (where) => ecrRegistryHost(where.account, where.region),
    openStore: async (url, region) =>
      s3.S3ObjectStore.fromUrl(url, new S3Client({ ...s3.s3ClientConfig(), ...(region ? { region } : {}) })),
  };
}

const WIDTH = 19;

function line(s: StepResult): string {
  const head = `${s.status.padEnd(5)} ${s.step.padEnd(WIDTH)} ${s.detail}`;
  return s.fix ? `${head}\n${' '.repeat(6 + WIDTH)} fix: ${s.fix}` : head;
}

function text(r: SelfTestReport): string {
  const count = (status: string) => r.steps.filter((s) => s.status === status).length;
  const lines = r.steps.map(line);
  if (r.image) {
    lines.push(
      `image: ${r.image.repository}:${r.image.tags[0]} ${r.image.digest} (the vault keeps its snapshot; ECR's copy is removed)`,
    );
  }
  if (r.mail)
    lines.push(
      `mail: subject ${r.mail.subject}${r.mail.topicArn ? `, to the subscriptions of ${r.mail.topicArn}` : ''}`,
    );
  lines.push(
    r.ok
      ? `self-test passed: ${count('PASS')} passed, ${count('SKIP')} skipped`
      : `self-test FAILED: ${count('FAIL')} failed, ${count('PASS')} passed, ${count('SKIP')} skipped`,
  );
  return lines.join('\n');
}

import { copyGraph } from '../copy';
import { Vault, type ReplicationStatus } from '../content';
import { Reference } from '../oci';
import { redactSecrets } from '../registry';
import { Restorer } from './restore';
import { SelfTestImage } from './selftest-image';
import {
  DEPLOYED,
  FIXES,
  SELFTEST_DEFAULTS,
  alarmSubject,
  message,
  periodOf,
  runId,
  scratchRepository,
  seconds,
  testTags,
  type AwsLocation,
  type SelfTestDeps,
  type SelfTestOptions,
  type SelfTestReport,
  type StackInfo,
  type StepName,
  type StepResult,
} from './selftest-model';

/*
 * `imagevault aws selftest`: what a new user runs right after `cdk deploy`. The steps, their order, the cleanup and
 * the report live here; every AWS control-plane call goes through SelfTestAws (lib/aws/selftest.ts fills it in with
 * the SDK), the data planes through the project's own registry client, copy engine and S3 store.
 */

/** A step's outcome without its timing; a step function returns one or throws (a FAIL with the error's message). */
type Outcome = Omit<StepResult, 'step' | 'seconds'>;

class StepFailure extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'StepFailure';
  }
}

const pass = (detail: string): Outcome => ({ status: 'PASS', detail });
const skip = (detail: string): Outcome => ({ status: 'SKIP', detail });
const fail = (detail: string, fix: string): Outcome => ({ status: 'FAIL', detail, fix });

/** Outputs of older deployments and the steps that need them: named when missing, with the same fix. */
const REDEPLOY = 'deploy this version of imagevault (npx cdk deploy --all), which adds the stack output';

/** The use case: one run of the self-test. Never throws for a failed step; cleans up whatever happened. */
export class SelfTest {
  private readonly opts: Required<
    Pick<
      SelfTestOptions,
      | 'snapshotTimeoutMs'
      | 'replicationTimeoutMs'
      | 'alertTimeoutMs'
      | 'pollMs'
      | 'progress'
      | 'now'
      | 'sleep'
    >
  >;
  private readonly steps: StepResult[] = [];
  private readonly cleanups: Array<{ what: string; run: () => Promise<void> }> = [];

  constructor(
    private readonly deps: SelfTestDeps,
    private readonly options: SelfTestOptions = {},
  ) {
    this.opts = {
      snapshotTimeoutMs: options.snapshotTimeoutMs ?? SELFTEST_DEFAULTS.snapshotTimeoutMs,
      replicationTimeoutMs: options.replicationTimeoutMs ?? SELFTEST_DEFAULTS.replicationTimeoutMs,
      alertTimeoutMs: options.alertTimeoutMs ?? SELFTEST_DEFAULTS.alertTimeoutMs,
      pollMs: options.pollMs ?? SELFTEST_DEFAULTS.pollMs,
      progress: options.progress ?? (() => undefined),
      now: options.now ?? (() => new Date()),
      sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    };
  }

  async run(): Promise<SelfTestReport> {
    const stackName = this.options.stack ?? SELFTEST_DEFAULTS.stack;
    const report: SelfTestReport = { ok: false, stack: stackName, steps: this.steps };
    try {
      await this.all(report, stackName);
    } finally {
      await this.step('cleanup', () => this.cleanup());
    }
    report.ok = this.steps.every((s) => s.status !== 'FAIL');
    return report;
  }

  private async all(report: SelfTestReport, stackName: string): Promise<void> {
    let stack: StackInfo | undefined;
    let where: AwsLocation | undefined;
    await this.step('stacks', async () => {
      stack = await this.deps.aws.describeStack(stackName, this.options.region);
      if (!stack) {
        return fail(
          `stack ${stackName} not found${this.options.region ? ` in ${this.options.region}` : ''}`,
          'deploy it (npx cdk deploy --all), or name your stack with --stack and its region with --region',
        );
      }
      where = locationOf(stack.stackId);
      report.region = where.region;
      report.account = where.account;
      if (!DEPLOYED.has(stack.status)) {
        return fail(
          `stack ${stackName} is ${stack.status}`,
          'wait for the deployment to finish, or read the stack events in the CloudFormation console and deploy again',
        );
      }
      return pass(`${stackName} (${stack.status}) in ${where.region}, account ${where.account}`);
    });
    if (!stack || !where) {
      for (const s of [
        'push',
        'snapshot',
        'replica',
        'restore',
        'alert',
        'reconcile-schedule',
        'upstream-schedule',
      ] as const)
        this.record(s, skip('needs the stack'), 0);
      return;
    }
    const deployed = stack;
    const outputs = stack.outputs;
    const location = where;

    // The image path: push → snapshot → replica, restore.
    const id = this.options.runId ?? runId(this.opts.now());
    const image = new SelfTestImage(id, this.opts.now());
    const tags = testTags(id);
    const host = this.deps.registryHost(location);
    let repository: string | undefined;
    let vault: Vault | undefined;
    const storeUrl = outputs.VaultStoreUrl ?? (outputs.VaultBucketName && `s3://${outputs.VaultBucketName}`);
    let pushed = false;
    await this.step('push', async () => {
      repository = this.options.repository ?? scratchRepository(outputs.ProtectedRepositories);
      checkProtected(repository, outputs.ProtectedRepositories);
      const state = await this.deps.aws.ensureRepository(host, repository);
      const name = repository;
      // Registered before the push: a push that fails half-way still leaves the repository to remove.
      if (state.created) {
        this.cleanups.push({
          what: `delete repository ${name}`,
          run: () => this.deps.aws.deleteRepository(location, name),
        });
      }
      this.cleanups.unshift({
        what: `delete tags ${tags.join(', ')} of ${name}`,
        run: async () => {
          const failed = await this.deps.aws.deleteImageTags(location, name, tags);
          // A tag never pushed (a failed run) is not there to delete: not a failure of the cleanup.
          const real = failed.filter((f) => !/ImageNotFound/i.test(f));
          if (real.length > 0) throw new Error(real.join('; '));
        },
      });
      report.image = {
        repository,
        tags: [...tags],
        digest: image.root.digest,
        repositoryCreated: state.created,
      };
      const dest = this.deps.registries.get(host).repository(repository);
      const copy = await copyGraph(image, dest, image.root, { label: `${host}/${repository}` });
      await dest.tag(image.root, tags[0]);
      pushed = true;
      return pass(
        `pushed ${repository}:${tags[0]} (${image.root.digest}, ${copy.blobs.copied + copy.manifests.copied} objects) to ${host}` +
          `${state.created ? `; created the repository (removed afterwards)` : ''}`,
      );
    });

    let snapshotted = false;
    await this.step('snapshot', async () => {
      if (!pushed || !repository) return skip('needs the pushed image');
      if (!storeUrl) return fail('the stack has no VaultStoreUrl output', REDEPLOY);
      vault = new Vault(await this.deps.openStore(storeUrl, location.region));
      const v = vault;
      const repo = repository;
      const found = await this.waitFor(
        `snapshot of ${repo}:${tags[0]} in ${storeUrl}`,
        this.opts.snapshotTimeoutMs,
        async () => {
          const history = await v.history(repo, tags[0]);
          return history.some((o) => o.action === 'push' && o.descriptor.digest === image.root.digest) &&
            (await v.image(repo, image.root.digest)) !== undefined
            ? true
            : undefined;
        },
      );
      if (!found) {
        return fail(
          `no snapshot of ${repo}:${tags[0]} in ${storeUrl} after ${seconds(this.opts.snapshotTimeoutMs)} s`,
          `look at the snapshot queue and its dead-letter queue (dashboard), and the snapshot Lambda's log; is ${repo} under the protected prefixes (${outputs.ProtectedRepositories ?? 'ProtectedRepositories output missing'})? (or wait longer: --snapshot-timeout)`,
        );
      }
      snapshotted = true;
      return pass(
        `${repo}:${tags[0]} is in ${storeUrl} (tag history and image record, ${image.root.digest})`,
      );
    });

    await this.step('replica', async () => {
      if (!snapshotted || !vault) return skip('needs the snapshot');
      const replicaStackName = this.options.replicaStack ?? outputs.ReplicaStackName;
      const replicaRegion = this.options.replicaRegion ?? outputs.ReplicaRegion;
      if (!replicaStackName) {
        return skip('the vault has no replica (no ReplicaStackName output and no --replica-stack)');
      }
      const key = `blobs/sha256/${image.root.digest.slice('sha256:'.length)}`;
      const v = vault;
      let last: ReplicationStatus | 'none' = 'none';
      const status = await this.waitFor(
        `replication of the manifest (${key})`,
        this.opts.replicationTimeoutMs,
        async () => {
          const info = await v.store.head(key);
          last = info?.replication ?? 'none';
          return last === 'completed' || last === 'failed' ? last : undefined;
        },
        () => `status ${last.toUpperCase()}`,
      );
      if (status === 'failed') {
        return fail(
          `S3 reports replication FAILED for ${key} of ${v.url}`,
          "check the replication role's permissions on the replica bucket and its KMS key (the ReplicationFailedAlarm says the same)",
        );
      }
      if (!status) {
        return last === 'none'
          ? fail(
              `${key} of ${v.url} has no replication status after ${seconds(this.opts.replicationTimeoutMs)} s: S3 does not replicate it`,
              "check the vault bucket's replication rule (it must cover the vault's prefix) and redeploy the stacks",
            )
          : fail(
              `replication of ${key} still ${String(last).toUpperCase()} after ${seconds(this.opts.replicationTimeoutMs)} s`,
              'wait longer (--replication-timeout; Replication Time Control replicates 99.99% within 15 minutes) and check the ReplicationLatency metric',
            );
      }
      const replica = await this.deps.aws.describeStack(replicaStackName, replicaRegion);
      const bucket = replica?.outputs.ReplicaBucketName;
      if (!bucket) {
        return fail(
          `${replica ? `stack ${replicaStackName} has no ReplicaBucketName output` : `stack ${replicaStackName} not found`}${replicaRegion ? ` in ${replicaRegion}` : ''}`,
          'name the replica stack with --replica-stack and its region with --replica-region',
        );
      }
      const prefix = storeUrl ? storeUrl.replace(/^s3:\/\/[^/]+\/?/, '') : '';
      const replicaUrl = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
      const copy = await (await this.deps.openStore(replicaUrl, replicaRegion)).head(key);
      if (!copy) {
        return fail(
          `S3 reports the manifest replicated, but ${replicaUrl} has no ${key}`,
          'check that the replication rule points at this replica bucket (ReplicaBucketName) and redeploy',
        );
      }
      return pass(
        `manifest replicated (COMPLETED) to ${replicaUrl}${copy.replication === 'replica' ? ' (REPLICA)' : ''}`,
      );
    });

    await this.step('restore', async () => {
      if (!snapshotted || !vault || !repository) return skip('needs the snapshot');
      const restorer = new Restorer(vault, this.deps.registries, { repositories: this.deps.aws });
      const to = Reference.parse(`${host}/${repository}:${tags[1]}`);
      const r = await restorer.restore({ repository, tag: tags[0], to });
      if (r.verifiedDigest !== image.root.digest) {
        return fail(
          `restored ${repository}:${tags[1]} is ${r.verifiedDigest ?? 'unverified'}, pushed ${image.root.digest}`,
          'run imagevault verify on the vault and read the snapshot Lambda log for this image',
        );
      }
      // The restore's tag is a push too, and ECR announces it: wait for its snapshot before the cleanup deletes the
      // image, or the snapshot Lambda would find it gone, fail three times and raise the dead-letter alarm.
      const v = vault;
      const repo = repository;
      const again = await this.waitFor(
        `snapshot of the restored ${repo}:${tags[1]}`,
        this.opts.snapshotTimeoutMs,
        async () =>
          (await v.history(repo, tags[1])).some(
            (o) => o.action === 'push' && o.descriptor.digest === image.root.digest,
          )
            ? true
            : undefined,
      );
      // Not a failure of its own: the snapshot step already tested the event path, and whether ECR announces a tag
      // added to an image it already holds is not verified here (no AWS account). Said, so a reader knows.
      return pass(
        `restored ${repo}:${tags[0]} from the vault as :${tags[1]}, same digest ${r.verifiedDigest}; ` +
          (again
            ? 'that push was snapshotted too'
            : `no snapshot of that push within ${seconds(this.opts.snapshotTimeoutMs)} s (if one comes after the cleanup, the snapshot Lambda finds the image gone)`),
      );
    });

    // The alert path and the schedules do not depend on the image.
    await this.step('alert', () => this.alert(report, location, outputs));
    await this.step('reconcile-schedule', () =>
      this.schedule(
        location,
        deployed,
        'reconcile',
        outputs.ReconcileScheduleName,
        outputs.ReconcileFunctionName,
      ),
    );
    await this.step('upstream-schedule', () =>
      this.schedule(
        location,
        deployed,
        'upstream check',
        outputs.UpstreamScheduleName,
        outputs.UpstreamFunctionName,
      ),
    );
  }

  /** SetAlarmState ALARM on the test alarm; CloudWatch's own record of the action says whether SNS took it. */
  private async alert(
    report: SelfTestReport,
    where: AwsLocation,
    outputs: StackInfo['outputs'],
  ): Promise<Outcome> {
    const name = outputs.SelfTestAlarmName;
    if (!name) return fail('the stack has no SelfTestAlarmName output (no test alarm)', REDEPLOY);
    const aws = this.deps.aws;
    const alarm = await aws.describeAlarm(where.region, name);
    if (!alarm) return fail(`alarm ${name} not found in ${where.region}`, REDEPLOY);
    const topic = outputs.AlertTopicArn;
    if (!alarm.actionsEnabled) {
      return fail(
        `alarm ${name} has its actions disabled: no alarm mails anyone`,
        `aws cloudwatch enable-alarm-actions --alarm-names ${name} --region ${where.region}`,
      );
    }
    if (topic && !alarm.alarmActions.includes(topic)) {
      return fail(
        `alarm ${name} does not alert the topic ${topic}`,
        'redeploy the stacks (npx cdk deploy --all)',
      );
    }
    // Actions run on a change of state only: from ALARM (a run that died before its cleanup), go to OK first.
    if (alarm.state === 'ALARM') {
      await aws.setAlarmState(
        where.region,
        name,
        'OK',
        'imagevault aws selftest: reset before the test alert',
      );
    }
    const since = new Date(this.opts.now().getTime() - 1000);
    this.cleanups.unshift({
      what: `set alarm ${name} back to OK`,
      run: () => aws.setAlarmState(where.region, name, 'OK', 'imagevault aws selftest: test alert done'),
    });
    await aws.setAlarmState(
      where.region,
      name,
      'ALARM',
      'imagevault aws selftest: a test alert, nothing to do',
    );
    const subject = alarmSubject(name, where.region);
    report.mail = { ...(topic ? { topicArn: topic } : {}), subject };
    const record = await this.waitFor(
      `CloudWatch's record of the test alert`,
      this.opts.alertTimeoutMs,
      async () => (await aws.alarmActions(where.region, name, since))[0],
    );
    if (!record) {
      return fail(
        `alarm ${name} went to ALARM, but CloudWatch recorded no action within ${seconds(this.opts.alertTimeoutMs)} s`,
        `read the alarm's history in the CloudWatch console (Action items) for what happened to the mail`,
      );
    }
    if (!record.succeeded) {
      return fail(
        `CloudWatch could not publish the test alert: ${record.summary}${record.error ? ` (${record.error})` : ''}`,
        "the topic's policy must allow cloudwatch.amazonaws.com sns:Publish, and the topic's KMS key must let CloudWatch use it (kms:GenerateDataKey*, kms:Decrypt)",
      );
    }
    return pass(
      `test alert published to ${topic ?? 'the alert topic'}: each confirmed subscription gets a mail from AWS Notifications with the subject ${subject}`,
    );
  }

  /** The schedule exists and is enabled, and the function ran within its last two periods (AWS/Lambda Invocations). */
  private async schedule(
    where: AwsLocation,
    stack: StackInfo,
    what: string,
    ruleName: string | undefined,
    functionName: string | undefined,
  ): Promise<Outcome> {
    if (!ruleName || !functionName) {
      return fail(`the stack has no ${ruleName ? 'function' : 'schedule'} output for the ${what}`, REDEPLOY);
    }
    const rule = await this.deps.aws.describeRule(where.region, ruleName);
    if (!rule) return fail(`the ${what}'s schedule ${ruleName} not found`, REDEPLOY);
    if (rule.state !== 'ENABLED') {
      return fail(
        `the ${what}'s schedule ${ruleName} is ${rule.state}`,
        `aws events enable-rule --name ${ruleName} --region ${where.region}`,
      );
    }
    const every = periodOf(rule.scheduleExpression);
    const now = this.opts.now();
    const windowMs = Math.min(2 * (every ?? SELFTEST_DEFAULTS.cronWindowMs), SELFTEST_DEFAULTS.maxWindowMs);
    const periodSeconds = windowMs <= 3 * 24 * 3600 * 1000 ? 300 : 3600;
    const points = await this.deps.aws.invocations(
      where.region,
      functionName,
      new Date(now.getTime() - windowMs),
      now,
      periodSeconds,
    );
    const ran = points.filter((p) => p.sum > 0).sort((a, b) => b.time.getTime() - a.time.getTime())[0];
    const schedule = `${ruleName} (${rule.scheduleExpression ?? 'no schedule expression'}) is ENABLED`;
    if (ran) {
      return pass(
        `${schedule}; ${functionName} last ran in the ${periodSeconds / 60} minutes from ${ran.time.toISOString()}`,
      );
    }
    const window = `${Math.round(windowMs / 3600_000)} h`;
    const deployedAt = stack.deployedAt;
    if (deployedAt && every !== undefined && now.getTime() - deployedAt.getTime() < every) {
      return pass(
        `${schedule}; ${functionName} has not run yet: the stack was deployed ${deployedAt.toISOString()}, the first run is due by ${new Date(deployedAt.getTime() + every).toISOString()}`,
      );
    }
    return fail(
      `${schedule}, but ${functionName} was not invoked in the last ${window}`,
      `check the rule's target (${functionName}) and that the function's resource policy lets events.amazonaws.com invoke it; then read its log`,
    );
  }

  /** Runs every registered cleanup (most recent first), whatever failed before. */
  private async cleanup(): Promise<Outcome> {
    if (this.cleanups.length === 0) return pass('nothing to clean up');
    const done: string[] = [];
    const failed: string[] = [];
    for (const c of this.cleanups.splice(0)) {
      try {
        await c.run();
        done.push(c.what);
      } catch (e) {
        failed.push(`${c.what}: ${message(e)}`);
      }
    }
    if (failed.length > 0) {
      return fail(
        `${failed.join('; ')}${done.length > 0 ? ` (done: ${done.join('; ')})` : ''}`,
        'remove what is left by hand (ECR console, or aws ecr batch-delete-image / aws cloudwatch set-alarm-state)',
      );
    }
    return pass(done.join('; '));
  }

  /** Looks every pollMs until `look` answers or the time is up; a progress line at most every 15 s. */
  private async waitFor<T>(
    what: string,
    timeoutMs: number,
    look: () => Promise<T | undefined>,
    state: () => string = () => 'not yet',
  ): Promise<T | undefined> {
    const start = this.opts.now().getTime();
    let said = start;
    for (;;) {
      const found = await look();
      if (found !== undefined) return found;
      const elapsed = this.opts.now().getTime() - start;
      if (elapsed >= timeoutMs) return undefined;
      if (this.opts.now().getTime() - said >= SELFTEST_DEFAULTS.progressEveryMs || said === start) {
        said = this.opts.now().getTime();
        this.opts.progress(
          `waiting for the ${what}: ${state()} (${seconds(elapsed)} s of ${seconds(timeoutMs)} s)`,
        );
      }
      await this.opts.sleep(Math.min(this.opts.pollMs, timeoutMs - elapsed));
    }
  }

  private async step(name: StepName, fn: () => Promise<Outcome>): Promise<void> {
    const started = this.opts.now().getTime();
    this.opts.progress(`${name}…`);
    let outcome: Outcome;
    try {
      outcome = await fn();
    } catch (e) {
      outcome =
        e instanceof StepFailure
          ? fail(e.message, e.fix)
          : /region is missing/i.test(message(e))
            ? fail(message(e), "name the vault stack's region: --region (or AWS_REGION)")
            : fail(message(e), FIXES[name] ?? 'the message says what failed');
    }
    this.record(name, outcome, (this.opts.now().getTime() - started) / 1000);
  }

  private record(step: StepName, outcome: Outcome, secs: number): void {
    const result: StepResult = {
      step,
      status: outcome.status,
      detail: redactSecrets(outcome.detail),
      ...(outcome.fix ? { fix: redactSecrets(outcome.fix) } : {}),
      seconds: Math.round(secs * 10) / 10,
    };
    this.steps.push(result);
    this.opts.progress(`${result.status} ${step}`);
  }
}

/** The account and region of a stack, from its ARN. */
export function locationOf(stackId: string): AwsLocation {
  const m = /^arn:aws[a-z-]*:cloudformation:([a-z0-9-]+):(\d{12}):stack\//.exec(stackId);
  if (!m) throw new StepFailure(`"${stackId}" is not a CloudFormation stack ARN`, 'report this as a bug');
  return { region: m[1], account: m[2] };
}

function checkProtected(repository: string, protectedRepositories: string | undefined): void {
  if (protectedRepositories === undefined) {
    throw new StepFailure('the stack has no ProtectedRepositories output', REDEPLOY);
  }
  const prefixes = protectedRepositories.split(',').map((p) => p.trim());
  if (prefixes.includes('*') || prefixes.some((p) => repository.startsWith(p))) return;
  throw new StepFailure(
    `${repository} is not under the protected prefixes (${protectedRepositories}): no snapshot would follow`,
    `choose a --repository under one of ${protectedRepositories}`,
  );
}

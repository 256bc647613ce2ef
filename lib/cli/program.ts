import { Command, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';
import { version } from '../../package.json';
import { SEVERITY_ORDER } from '../provenance/severity';
import { parseSeconds } from '../content/timeouts';
import { DEFAULT_PARALLEL } from '../services/defaults';
import type { CommandContext, GlobalCommandOptions } from './context';

/*
 * The table of contents of the CLI: every command, its arguments, options and an example. It imports nothing heavy:
 * the implementations (./commands) are loaded when a command runs, so that `--help`, `--version` and a mistyped
 * option answer without loading the registry client, zod or the AWS SDK.
 */

/** The command implementations and their shared context. */
export type Commands = typeof import('./commands');

/** How the implementations are loaded: an import here; the installed CLI loads its bundle through the code cache. */
export type CommandsLoader = () => Promise<Commands>;

const importCommands: CommandsLoader = () => import('./commands');

/** Where an action gets its context: the CLI builds it from the global options; tests hand in their own. */
export type ContextSource = () => Promise<CommandContext>;

type Action<A extends unknown[]> = (ctx: CommandContext, ...args: A) => Promise<void>;

/** An action whose implementation is loaded when it runs. */
function lazy<A extends unknown[]>(
  context: ContextSource,
  load: CommandsLoader,
  pick: (commands: Commands) => Action<A>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    const run = pick(await load());
    await run(await context(), ...args);
  };
}

/** Examples shown under each command's help (`imagevault help snapshot`, `imagevault snapshot --help`). */
function examples(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

/** A timeout in seconds, read as the Lambda functions read IMAGEVAULT_TIMEOUT (lib/content/timeouts.ts). */
function seconds(v: string): number {
  try {
    return parseSeconds(v, '--timeout');
  } catch {
    throw new InvalidArgumentError('must be a number of seconds greater than 0');
  }
}

function time(v: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new InvalidArgumentError(`"${v}" is not a time (use ISO 8601, e.g. 2026-11-23T12:00:00Z)`);
  return d;
}

const repeatable = (v: string, all: string[]) => [...all, v];

const DEFAULT_STORE = () => process.env.IMAGEVAULT_STORE ?? `file://${path.resolve('.imagevault/store')}`;

/** The loader, called at most once: the context and the action share one copy of the implementations. */
function once(load: CommandsLoader): CommandsLoader {
  let loaded: Promise<Commands> | undefined;
  return () => (loaded ??= load());
}

export function buildProgram(loader: CommandsLoader = importCommands): Command {
  const load = once(loader);
  const program = new Command('imagevault')
    .description('Snapshot container images bit-for-bit, restore them, export them, verify the vault.')
    .version(version, '-V, --version', 'the version of imagevault')
    .addOption(
      new Option('--store <url>', 'vault: file:///path or s3://bucket/prefix')
        .env('IMAGEVAULT_STORE')
        .default(DEFAULT_STORE()),
    )
    .option('--json', 'machine-readable output on stdout', false)
    .option('--insecure', 'allow plain HTTP and unverified TLS for non-loopback registries', false)
    .option('--concurrency <n>', 'blobs transferred at once', positiveInt, 4)
    .addOption(
      new Option('--timeout <seconds>', 'how long to wait for a registry to answer a request (default 300)')
        .env('IMAGEVAULT_TIMEOUT')
        .argParser(seconds),
    )
    .option('--no-progress', 'no progress display on stderr')
    .option('--verbose', 'on failure, print the stack trace too (or DEBUG=imagevault)', false)
    .showHelpAfterError()
    .exitOverride();
  examples(
    program,
    'imagevault snapshot registry.example.com/team/app:1.4',
    'imagevault restore team/app:1.4 --to registry.example.com/team/app',
    'imagevault help snapshot',
  );

  let shared: Promise<CommandContext> | undefined;
  const context: ContextSource = () =>
    (shared ??= load().then((m) => m.cliContext(program.opts<GlobalCommandOptions>())));

  examples(
    program
      .command('snapshot')
      .description(
        'copy images (REPO:TAG, REPO@DIGEST, or a repository prefix ending in / or *) into the vault',
      )
      .argument('<ref...>', 'registry/repository[:tag|@digest]')
      .option('--all-tags', 'every tag of each repository named', false)
      .option(
        '--candidate <ref>',
        'a base image to test by layer prefix when an image does not say what it is built on (repeatable)',
        repeatable,
        [] as string[],
      )
      .option('--no-base', 'skip base detection and the build-drift check')
      .action(lazy(context, load, (c) => c.snapshotCommand)),
    'imagevault snapshot registry.example.com/team/app:1.4',
    'imagevault snapshot --all-tags registry.example.com/team/       # every repository under team/',
    'imagevault --store s3://my-vault-bucket snapshot 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:…',
  );

  examples(
    program
      .command('list')
      .description('repositories in the vault, or the tags and images of one')
      .argument('[repository]')
      .action(lazy(context, load, (c) => c.listCommand)),
    'imagevault list',
    'imagevault list team/app',
  );

  examples(
    program
      .command('history')
      .description('every digest a tag has pointed to, oldest first')
      .argument('<repo:tag>')
      .action(lazy(context, load, (c) => c.historyCommand)),
    'imagevault history team/app:prod',
  );

  examples(
    program
      .command('restore')
      .description(
        'push an image from the vault into a registry, bit-for-bit, and verify it; with --all, every image of the vault',
      )
      .argument('[image]', 'REPO:TAG or REPO@DIGEST as snapshotted (not with --all)')
      .requiredOption('--to <ref>', 'destination registry/repository[:tag]; with --all, REGISTRY[/NAMESPACE]')
      .option('--at <time>', 'the image the tag pointed to at this time', time)
      .option('--dry-run', 'show what would be copied, push nothing', false)
      .option(
        '--force',
        'move a destination tag that points at another image (mutable repositories only)',
        false,
      )
      .option('--all', 'every repository:tag of the vault, into REGISTRY/<repository>:<tag>', false)
      .option('--prefix <path>', 'with --all: only repositories under this path (team, team/, or team/ap*)')
      .option(
        '--parallel <n>',
        `with --all: images restored at once (default ${DEFAULT_PARALLEL})`,
        positiveInt,
      )
      .action(lazy(context, load, (c) => c.restoreCommand)),
    'imagevault restore team/app:prod --to registry.example.com/team/app',
    'imagevault restore team/app:prod --at 2026-11-01T00:00:00Z --to registry.example.com/team/app:before',
    'imagevault restore --all --prefix team/ --to registry.example.com --dry-run',
  );

  examples(
    program
      .command('export')
      .description('write an image from the vault as an OCI layout or a docker-archive')
      .argument('<image>', 'REPO:TAG or REPO@DIGEST as snapshotted')
      .option('--at <time>', 'the image the tag pointed to at this time', time)
      .option('--oci-layout <dir>', 'OCI image layout directory (created or added to)')
      .option('--docker-archive <file>', 'docker-archive tar (docker load, skopeo docker-archive:)')
      .option('--name <name>', 'name in the OCI layout (ref.name) @default the tag, else the digest')
      .option(
        '--platform <os/arch[/variant]>',
        'for --docker-archive of a multi-platform image',
        'linux/amd64',
      )
      .action(lazy(context, load, (c) => c.exportCommand)),
    'imagevault export team/app:prod --oci-layout ./app-layout',
    'imagevault export team/app:prod --docker-archive app.tar --platform linux/arm64',
  );

  examples(
    program
      .command('verify')
      .description(
        're-hash the vault and walk every image: report missing or corrupt content, and what interrupted writes left behind',
      )
      .argument('[repository]')
      .option(
        '--repair',
        'remove what interrupted writes left behind (temporary files untouched for an hour, S3 uploads a day old)',
        false,
      )
      .action(lazy(context, load, (c) => c.verifyCommand)),
    'imagevault verify',
    'imagevault --store s3://my-vault-bucket verify team/app',
    'imagevault verify --repair',
  );

  registerBaseCommand(program, context, load);
  registerDriftCommand(program, context, load);
  registerProvenanceCommand(program, context, load);
  registerAwsCommand(program, context, load);
  registerInventoryCommand(program, context, load);
  return program;
}

/** `imagevault inventory`: which image digests run where (ECS, Lambda, Kubernetes), kept in the vault. */
export function registerInventoryCommand(
  program: Command,
  context: ContextSource,
  load: CommandsLoader = importCommands,
): void {
  examples(
    program
      .command('inventory')
      .description(
        'scan which image digests run where (ECS tasks, Lambda functions, Kubernetes pods), record it in the vault, ' +
          'and snapshot at once what runs but is not in the vault; --show lists what earlier scans found',
      )
      .option('--ecs', "scan ECS: every cluster's running tasks", false)
      .option('--lambda', 'scan Lambda: every container-image function and version', false)
      .option('--kubernetes', 'scan Kubernetes: every live pod, through the kubeconfig', false)
      .option('--context <name>', 'with --kubernetes: the kubeconfig context (default: its current context)')
      .option(
        '--kubeconfig <file>',
        'with --kubernetes: the kubeconfig (default: KUBECONFIG or ~/.kube/config)',
      )
      .option(
        '--region <region>',
        "with --ecs/--lambda: the AWS region (default: AWS_REGION or the profile's)",
      )
      .option('--profile <name>', 'with --ecs/--lambda: the AWS profile (default: AWS_PROFILE)')
      .option('--no-snapshot', 'report running digests the vault lacks, do not snapshot them')
      .option('--show', 'list what the vault knows from earlier scans; scan nothing', false)
      .option('--json', 'machine-readable output on stdout')
      .action(lazy(context, load, (c) => c.inventoryCommand)),
    'imagevault inventory --ecs --lambda --region eu-west-1',
    'imagevault inventory --kubernetes --context prod-eks',
    'imagevault inventory --show --json',
  );
}

/** `imagevault aws selftest`: after `cdk deploy`, checks the deployment end to end and cleans up after itself. */
export function registerAwsCommand(
  program: Command,
  context: ContextSource,
  load: CommandsLoader = importCommands,
): void {
  const aws = examples(
    program.command('aws').description('The AWS deployment (the CDK app): check it.'),
    'imagevault aws selftest',
  );
  examples(
    aws
      .command('selftest')
      .description(
        'push a tiny test image to a scratch ECR repository, wait for its snapshot in the vault and the replica, ' +
          'restore it, send a test alert, check the schedules; report each step PASS/FAIL/SKIP with the fix, ' +
          'remove the test image (exit 1 when a step failed)',
      )
      .option('--stack <name>', "the vault's stack", 'ImageVault')
      .option('--region <region>', "the vault stack's region (default: AWS_REGION or the profile's)")
      .option(
        '--replica-stack <name>',
        "the replica's stack (default: the vault stack's ReplicaStackName output)",
      )
      .option('--replica-region <region>', "the replica stack's region (default: its ReplicaRegion output)")
      .option(
        '--repository <name>',
        'the scratch ECR repository, under a protected prefix (default: imagevault-selftest under the first prefix)',
      )
      .option('--snapshot-timeout <seconds>', 'how long to wait for the snapshot', seconds, 300)
      .option('--replication-timeout <seconds>', 'how long to wait for the replica', seconds, 900)
      .option(
        '--alert-timeout <seconds>',
        "how long to wait for CloudWatch's record of the test alert",
        seconds,
        60,
      )
      .option('--json', 'machine-readable report on stdout')
      .action(lazy(context, load, (c) => c.awsSelftestCommand)),
    'imagevault aws selftest',
    'imagevault aws selftest --region eu-west-1 --stack TeamAVault --json',
  );
}

/** `imagevault base REF`: what an image is built on, how we know, and whether upstream moved. */
export function registerBaseCommand(
  program: Command,
  context: ContextSource,
  load: CommandsLoader = importCommands,
): void {
  examples(
    program
      .command('base')
      .description(
        'what an image is built on (per platform, the chain of bases), how that was found, and whether upstream moved; ' +
          'REF with a registry host is detected live, REPO:TAG or REPO@DIGEST is read from the vault',
      )
      .argument('<ref>', 'registry/repository[:tag|@digest], or a vault image repository[:tag|@digest]')
      .option(
        '--candidate <ref>',
        'a candidate base to try when no annotation or provenance names one (repeatable)',
        repeatable,
        [] as string[],
      )
      .option('--no-upstream', 'do not check whether base tags moved')
      .action(lazy(context, load, (c) => c.baseCommand)),
    'imagevault base team/app:prod',
    'imagevault base registry.example.com/team/app:1.4 --candidate ruby:2.7',
  );
}

/** `imagevault drift check`: one pass of the upstream watcher; exit 3 when an upstream base moved. */
export function registerDriftCommand(
  program: Command,
  context: ContextSource,
  load: CommandsLoader = importCommands,
): void {
  const drift = examples(
    program.command('drift').description('Drift between images and what they were built on.'),
    'imagevault drift check',
  );
  examples(
    drift
      .command('check')
      .description(
        'Check every upstream base tag in use (one HEAD each; a GET only when a tag moved) and name newer versions of it. ' +
          'Exit code 3 when drift is found; 5 with --fail-on when a newer version of that kind exists.',
      )
      .option(
        '--reference <ref...>',
        'check only these upstream tags (e.g. ruby:2.7), instead of every base in the vault',
        [],
      )
      .option(
        '--no-newer',
        'do not look for newer versions of the bases (tag lists, kept in the vault for a day)',
      )
      .addOption(
        new Option(
          '--fail-on <kind>',
          'exit code 5 when a base has a newer release of this kind or a bigger one (newer-minor: a minor or major)',
        ).choices(['newer-major', 'newer-minor', 'newer-patch']),
      )
      .option(
        '--ignore-tag <glob>',
        'a tag never reported as newer, e.g. "*-windowsservercore*" (repeatable)',
        repeatable,
        [] as string[],
      )
      .option('--prereleases', 'count pre-releases (3.4.0-rc1) as newer versions')
      .action(lazy(context, load, (c) => c.driftCheckCommand)),
    'imagevault drift check',
    'imagevault drift check --reference ruby:2.7 node:20-alpine',
    'imagevault drift check --fail-on newer-major',
  );
}

/** `imagevault provenance show|list|verify`: who pushed what, on which base, signed by whom, and proof of it. */
export function registerProvenanceCommand(
  program: Command,
  context: ContextSource,
  load: CommandsLoader = importCommands,
): void {
  const cmd = examples(
    program
      .command('provenance')
      .description(
        'who pushed an image, from which commit, on which base, signed and scanned, and where the copy is',
      ),
    'imagevault provenance show team/app:prod',
    'imagevault provenance list --unsigned',
    'imagevault provenance verify',
  );
  examples(
    cmd
      .command('show')
      .description('the provenance of one vault image, saying plainly what is unknown and why')
      .argument('<ref>', 'repository:tag or repository@digest in the vault')
      .option('--json', 'machine-readable output on stdout')
      .action(lazy(context, load, (c) => c.provenanceShowCommand)),
    'imagevault provenance show team/app:prod',
  );
  examples(
    cmd
      .command('list')
      .description('the newest provenance record of every image, filtered')
      .option('--repo <repository>', 'only this repository (and repositories under it)')
      .option('--since <time>', 'only images pushed at or after this time (ISO 8601)')
      .option('--pushed-by <substring>', 'only images whose pusher ARN or session issuer contains this')
      .option('--base <ref>', 'only images whose base reference or digest contains this')
      .option('--unsigned', 'only images with no signature referrer')
      .option(
        '--vulnerable [severity]',
        `only images whose scan found something at SEVERITY or worse (${SEVERITY_ORDER.slice(0, 5).join(', ')}; default HIGH)`,
      )
      .option('--json', 'machine-readable output on stdout')
      .action(lazy(context, load, (c) => c.provenanceListCommand)),
    'imagevault provenance list --repo team/ --since 2026-11-01',
    'imagevault provenance list --vulnerable CRITICAL --json',
  );
  examples(
    cmd
      .command('verify')
      .description("recompute every provenance log's hash chain; exit 4 when one is broken")
      .argument('[repository]', 'one repository; all by default')
      .option('--json', 'machine-readable output on stdout')
      .action(lazy(context, load, (c) => c.provenanceVerifyCommand)),
    'imagevault provenance verify',
    'imagevault provenance verify team/app',
  );
}

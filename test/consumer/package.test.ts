/**
 * The constructs as another team gets them: this package packed (`npm pack`), installed into an empty project beside
 * that project's own aws-cdk-lib and constructs, the consumer fixture compiled there by tsc against the package's
 * declarations and run by node, as `cdk synth` runs an app. No sources, no esbuild, no ts-jest mapping: the import
 * `imagevault/constructs` resolves through the package's `exports`.
 *
 * Offline and quick: the tarball is installed with `npm install --offline` (it has no dependencies; its peers are
 * optional, so npm fetches nothing) and aws-cdk-lib and constructs are symlinks to this repository's copies. The pack
 * skips `prepack`: a rebuild would replace dist/ under the other suites running beside this one; `npm test` builds
 * first (pretest), and a stale or missing dist/ shows as templates that differ from the sources'.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { FLAG_SETS, synthConsumer } from './support';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');

describe('the packed package in another project (npm pack, npm install, tsc, node)', () => {
  let work: string;
  let project: string;

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'constructs', 'infra', 'constructs.js'))) {
      throw new Error('no dist/constructs: run npm run build');
    }
    work = mkdtempSync(path.join(os.tmpdir(), 'imagevault-consumer-'));
    project = path.join(work, 'team-a');
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[];
    await run('mkdir', ['-p', project]);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'team-a', private: true }));
    await run(
      'npm',
      [
        'install',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        path.join(work, packed.filename),
      ],
      { cwd: project },
    );
  }, 120_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs the package alone: its peers aws-cdk-lib and constructs are optional, npm adds neither', () => {
    const installed = readdirSync(path.join(project, 'node_modules')).filter((n) => !n.startsWith('.'));
    expect(installed).toEqual(['imagevault']);
  });

  it('synthesizes the consumer app, compiled against the declarations, as the sources do', async () => {
    // GIVEN the project's own aws-cdk-lib and constructs, and the README's app in it
    for (const name of ['aws-cdk-lib', 'constructs']) {
      symlinkSync(path.join(ROOT, 'node_modules', name), path.join(project, 'node_modules', name), 'dir');
    }
    copyFileSync(path.join(__dirname, 'app.ts'), path.join(project, 'app.ts'));
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022'],
          module: 'node16',
          moduleResolution: 'node16',
          strict: true,
          // As CDK apps usually have it (aws-cdk-lib's declarations want lib files beyond ES2022): the declarations
          // themselves are not checked, the app's use of them is.
          skipLibCheck: true,
          types: [],
          outDir: 'out',
        },
        files: ['app.ts'],
      }),
    );
    // WHEN it is compiled, then run under each flag set with the context the CDK CLI would pass (side by side)
    await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
    const synthesized = await Promise.all(
      Object.entries(FLAG_SETS).map(async ([name, flags], i) => {
        const outdir = path.join(work, `cdk.out.${i}`);
        await run(process.execPath, [path.join(project, 'out', 'app.js')], {
          cwd: project,
          env: { PATH: process.env.PATH, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(flags) },
        });
        const template = (stack: string) =>
          JSON.parse(readFileSync(path.join(outdir, `${stack}.template.json`), 'utf8')) as Record<
            string,
            unknown
          >;
        return {
          name,
          flags,
          templates: { TeamAVaultReplica: template('TeamAVaultReplica'), TeamAVault: template('TeamAVault') },
        };
      }),
    );
    // THEN each flag set gave both stacks, and with no flags (the most different app) the templates are the
    // sources', asset hashes included: the prebundled code is the same. (test/consumer/consumer.test.ts checks the
    // sources under every flag set.)
    expect(synthesized.map((s) => s.name)).toEqual(Object.keys(FLAG_SETS));
    const plain = synthesized[0];
    expect(plain.flags).toEqual({});
    expect(plain.templates).toEqual(synthConsumer({}).templates);
  }, 120_000);
});

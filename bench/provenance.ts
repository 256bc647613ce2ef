/**
 * `npm run bench:provenance`: what provenance costs as the vault grows. In-process (the library, not the CLI), on a
 * directory store and on the test bed's radosgw (versioned, with Object Lock), for R repositories × I images each:
 *   record   recordProvenance per image (what each snapshot adds), and its share of objects read/written
 *   list     `provenance list` over every image
 *   verify   `provenance verify` over every log (on S3 with the version history)
 *   refresh  the reconcile's refreshProvenance over every log: nothing pending, then every image pending
 * Prints a table; --json FILE writes the numbers too. Options: --repos N (default 10), --images N (default 20),
 * --no-s3.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { provenanceList, provenanceVerify } from '../lib/cli/commands/provenance';
import { DirectoryObjectStore, Vault, type ObjectStore } from '../lib/content';
import { S3ObjectStore, s3ClientConfig } from '../lib/content/s3';
import { ProvenanceLog, recordProvenance, refreshProvenance } from '../lib/provenance';
import { snapshottedImage } from '../fixtures';
import { Testbed } from './testbed';

interface Row {
  store: string;
  images: number;
  recordMsPerImage: number;
  listMs: number;
  verifyMs: number;
  refreshIdleMs: number;
  refreshPendingMs: number;
  requestsPerRecord: number;
}

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

/** Counts calls into the store, to say how many requests one record costs (on S3, each is an HTTP request). */
function counting(store: ObjectStore): { store: ObjectStore; calls: () => number } {
  let n = 0;
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'constructor') return v;
      return (...args: unknown[]) => {
        n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, calls: () => n };
}

async function run(label: string, base: ObjectStore, repos: number, perRepo: number): Promise<Row> {
  const { store, calls } = counting(base);
  const vault = new Vault(store);
  await vault.init();
  const now = new Date();
  const pushedAt = new Date(now.getTime() - 3600_000).toISOString();
  const images: [string, string, string][] = [];
  for (let r = 0; r < repos; r++)
    for (let i = 0; i < perRepo; i++)
      images.push([
        `bench/r${r}`,
        (await snapshottedImage(vault, `bench/r${r}`, `v${i}`, `r${r}-${i}`, {}, pushedAt)).manifest.digest,
        `v${i}`,
      ]);

  const before = calls();
  let t = performance.now();
  // As the snapshot path records: with the push it saw (time and tag).
  for (const [repository, digest, tag] of images)
    await recordProvenance(vault, repository, digest, { now, push: { time: pushedAt, tags: [tag] } });
  const recordMs = performance.now() - t;
  const requestsPerRecord = (calls() - before) / images.length;

  t = performance.now();
  const rows = await provenanceList(vault, {}, now);
  const listMs = performance.now() - t;
  if (rows.length !== images.length)
    throw new Error(`${label}: list found ${rows.length} of ${images.length}`);

  t = performance.now();
  const reports = await provenanceVerify(vault);
  const verifyMs = performance.now() - t;
  if (reports.some((x) => !x.ok)) throw new Error(`${label}: verify failed: ${JSON.stringify(reports)}`);

  // Every image is still pending (CloudTrail within its window): the reconcile re-asks each, nothing changes.
  const log = new ProvenanceLog(vault.store);
  t = performance.now();
  for (const repository of await log.repositories()) await refreshProvenance(vault, repository, { now });
  const refreshPendingMs = performance.now() - t;
  // A day later each becomes unknown (one entry appended), after which nothing is pending any more.
  const later = new Date(now.getTime() + 2 * 86_400_000);
  for (const repository of await log.repositories())
    await refreshProvenance(vault, repository, { now: later });
  t = performance.now();
  for (const repository of await log.repositories())
    await refreshProvenance(vault, repository, { now: later });
  const refreshIdleMs = performance.now() - t;

  return {
    store: label,
    images: images.length,
    recordMsPerImage: recordMs / images.length,
    listMs,
    verifyMs,
    refreshIdleMs,
    refreshPendingMs,
    requestsPerRecord,
  };
}

async function main(): Promise<void> {
  const repos = arg('repos', 10);
  const perRepo = arg('images', 20);
  const withS3 = !process.argv.includes('--no-s3');
  const scratch = mkdtempSync(path.join(tmpdir(), 'imagevault-bench-prov-'));
  const testbed = new Testbed(path.join(scratch, 'testbed'));
  const out: Row[] = [];
  try {
    out.push(await run('directory', new DirectoryObjectStore(path.join(scratch, 'vault')), repos, perRepo));
    if (withS3) {
      testbed.start(true);
      const s3 = testbed.s3!;
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        ...s3ClientConfig({ AWS_ENDPOINT_URL_S3: s3.endpoint }),
      });
      const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
      await client.send(new CreateBucketCommand({ Bucket: 'bench-prov', ObjectLockEnabledForBucket: true }));
      out.push(
        await run(
          's3 (radosgw, Object Lock)',
          new S3ObjectStore({ bucket: 'bench-prov', client }),
          repos,
          perRepo,
        ),
      );
      client.destroy();
    }
  } finally {
    testbed.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  const f = (n: number) => n.toFixed(n < 10 ? 1 : 0);
  process.stdout.write(
    `provenance, ${repos} repositories × ${perRepo} images\n` +
      'store                       images  record ms/image  requests/record  list ms  verify ms  refresh ms (pending)  refresh ms (idle)\n',
  );
  for (const r of out)
    process.stdout.write(
      `${r.store.padEnd(28)}${String(r.images).padStart(6)}  ${f(r.recordMsPerImage).padStart(15)}  ${f(r.requestsPerRecord).padStart(15)}  ${f(r.listMs).padStart(7)}  ${f(r.verifyMs).padStart(9)}  ${f(r.refreshPendingMs).padStart(20)}  ${f(r.refreshIdleMs).padStart(17)}\n`,
    );
  const json = process.argv.indexOf('--json');
  if (json > 0) writeFileSync(process.argv[json + 1], JSON.stringify({ repos, perRepo, rows: out }, null, 2));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:provenance: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});

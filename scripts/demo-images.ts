/**
 * Demo helper: builds the sample images (no Docker needed) and pushes them with skopeo, then writes what the
 * registry holds (reference → digest, as skopeo reports it) to a JSON file for the after-restore comparison.
 * usage: tsx scripts/demo-images.ts REGISTRY WORKDIR OUT.json
 */
import { writeFileSync } from 'node:fs';
import { pushStandardFixtures, skopeoDigest } from '../fixtures';

async function run(registry: string, dir: string, outFile: string): Promise<void> {
  const fx = await pushStandardFixtures(registry, dir, {
    repoPrefix: 'demo',
    layerSize: 2 * 1024 * 1024,
    seed: 'demo',
  });
  const images = [
    fx.multiLayer,
    fx.index,
    fx.shared[0],
    fx.shared[1],
    fx.docker,
    fx.plainTar,
    fx.withEmptyLayer,
  ];
  const rows = [];
  for (const img of images)
    rows.push({ repo: img.repo, tag: img.reference, digest: await skopeoDigest(img.ref) });
  rows.push({ repo: fx.signature.repo, tag: '', digest: fx.signature.digest });
  writeFileSync(outFile, JSON.stringify(rows, null, 2));
  for (const r of rows)
    console.log(
      `  pushed ${registry}/${r.repo}${r.tag ? `:${r.tag}` : ` (signature of ${fx.multiLayer.repo}:1)`}  ${r.digest}`,
    );
}

const [registry, dir, out] = process.argv.slice(2);
if (!registry || !dir || !out) {
  console.error('usage: tsx scripts/demo-images.ts REGISTRY WORKDIR OUT.json');
  process.exit(2);
}
run(registry, dir, out).catch((e: Error) => {
  console.error(`demo-images: ${e.message}`);
  process.exit(1);
});

import * as path from 'node:path';
import { Registries, Restorer, exportOciLayout } from '../../services';
import type { CommandContext } from '../context';
import { UsageError } from '../exit';
import { parseVaultRef } from '../vault-ref';
import { out } from './format';

export interface ExportCommandOptions {
  at?: Date;
  ociLayout?: string;
  dockerArchive?: string;
  name?: string;
  platform: string;
}

/** `imagevault export`: an image from the vault as an OCI layout or a docker-archive. */
export async function exportCommand(
  ctx: CommandContext,
  spec: string,
  cmd: ExportCommandOptions,
): Promise<void> {
  const opts = ctx.opts();
  if (!!cmd.ociLayout === !!cmd.dockerArchive)
    throw new UsageError('give exactly one of --oci-layout DIR or --docker-archive FILE');
  const src = parseVaultRef(spec);
  const vault = await ctx.vault();
  const desc = await new Restorer(vault, new Registries()).resolve({ ...src, at: cmd.at });
  if (cmd.ociLayout) {
    const name = cmd.name ?? src.tag ?? desc.digest;
    const r = await exportOciLayout(vault, desc, path.resolve(cmd.ociLayout), name, {
      concurrency: opts.concurrency,
    });
    out(
      opts.json,
      r,
      () =>
        `exported ${spec} (${desc.digest}) to ${r.path} as "${name}": ${r.copy.blobs.copied} blobs written, ${r.copy.blobs.skipped} present`,
    );
    return;
  }
  const file = path.resolve(cmd.dockerArchive!);
  const repoTag = src.tag ? `${src.repository}:${src.tag}` : undefined;
  // Loaded on use: tar-stream is needed by this one command only, and start-up time counts for every other.
  const { exportDockerArchive } = await import('../../services/docker-archive');
  const r = await exportDockerArchive(vault, desc, file, { repoTag, platform: cmd.platform });
  out(
    opts.json,
    r,
    () =>
      `exported ${spec} (${r.manifest.digest}, ${cmd.platform}) to ${file}: ${r.layers} layers, ${r.bytes} bytes`,
  );
}

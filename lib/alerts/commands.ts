/** The exact command that puts `digest` back as registry/repository[:tag] from the vault. */
export function restoreCommand(
  repository: string,
  digest: string,
  registry: string,
  tag: string | undefined,
  store: string,
): string {
  return `imagevault restore ${repository}@${digest} --to ${registry}/${repository}${tag ? `:${tag}` : ''} --store ${store}`;
}

/*
 * How a private ECR registry's host is spelt: plain names, no client, so that use cases naming an ECR image (alerts,
 * events) need not load the AWS SDK. lib/aws/ecr-auth.ts re-exports both for its callers.
 */

/** `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`: a private ECR registry's host. */
const ECR_HOST = /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(\.cn)?$/;

/** The account and region of a private ECR registry host, or undefined for any other host. */
export function isEcrRegistry(host: string): { account: string; region: string } | undefined {
  const m = ECR_HOST.exec(host.toLowerCase());
  return m ? { account: m[1], region: m[3] } : undefined;
}

/** The registry host of an account's private ECR registry in a region (`.amazonaws.com.cn` in China). */
export function ecrRegistryHost(account: string, region: string): string {
  return `${account}.dkr.ecr.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

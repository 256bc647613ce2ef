import { DescribeImagesCommand, DescribeRepositoriesCommand, type ECRClient } from '@aws-sdk/client-ecr';
import type { EcrReader, ImageDetail, Repo } from '../services/reconcile';

/** ECR's largest page for DescribeRepositories and DescribeImages. */
const ECR_PAGE_SIZE = 1000;

/** Reconcile's view of ECR, page by page: DescribeRepositories and DescribeImages of the client's registry. */
export class EcrImages implements EcrReader {
  /** An ECRClient (aws-sdk-client-mock fakes it in tests). */
  constructor(private readonly client: Pick<ECRClient, 'send'>) {}

  async *repositories(): AsyncIterable<Repo> {
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(
        new DescribeRepositoriesCommand({ maxResults: ECR_PAGE_SIZE, nextToken }),
      );
      for (const r of page.repositories ?? []) {
        if (!r.repositoryName || !r.registryId) continue;
        yield { name: r.repositoryName, account: r.registryId };
      }
      nextToken = page.nextToken;
    } while (nextToken);
  }

  async *images(repo: Repo): AsyncIterable<ImageDetail> {
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(
        new DescribeImagesCommand({
          registryId: repo.account,
          repositoryName: repo.name,
          maxResults: ECR_PAGE_SIZE,
          nextToken,
          // Without it ECR lists ACTIVE images only (see NOT_PULLABLE in lib/services/reconcile.ts).
          filter: { imageStatus: 'ANY' },
        }),
      );
      yield* page.imageDetails ?? [];
      nextToken = page.nextToken;
    } while (nextToken);
  }
}

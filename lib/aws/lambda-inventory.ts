import { GetFunctionCommand, LambdaClient, paginateListFunctions } from '@aws-sdk/client-lambda';
import type { InventoryScanner, RunningImage, SourceScan } from '../services/inventory';

const awsError = (e: unknown) => `${(e as Error).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`;

/**
 * What runs on Lambda in one region: every container-image function (PackageType Image), every published version
 * as well as $LATEST — an alias or a caller may still invoke an old version, whose image must stay — by the image
 * Lambda resolved at publish time (GetFunction's `Code.ResolvedImageUri`: `repo@sha256:…`).
 */
export class LambdaInventoryScanner implements InventoryScanner {
  readonly source: string;

  constructor(
    private readonly client: LambdaClient,
    readonly region: string,
  ) {
    this.source = `lambda:${region}`;
  }

  async scan(): Promise<SourceScan> {
    const functions: { name: string; arn: string; version: string }[] = [];
    try {
      for await (const page of paginateListFunctions({ client: this.client }, { FunctionVersion: 'ALL' }))
        for (const f of page.Functions ?? [])
          if (f.PackageType === 'Image' && f.FunctionName && f.FunctionArn)
            functions.push({ name: f.FunctionName, arn: f.FunctionArn, version: f.Version ?? '$LATEST' });
    } catch (e) {
      throw new Error(`lambda:ListFunctions in ${this.region}: ${awsError(e)}`, { cause: e });
    }
    const running: RunningImage[] = [];
    const errors: string[] = [];
    for (const f of functions) {
      try {
        const out = await this.client.send(
          new GetFunctionCommand({ FunctionName: f.name, Qualifier: f.version }),
        );
        const uri = out.Code?.ResolvedImageUri;
        if (!uri) {
          errors.push(`${f.arn}: GetFunction gave no Code.ResolvedImageUri`);
          continue;
        }
        running.push({
          image: uri,
          placement: {
            kind: 'lambda',
            region: this.region,
            function: f.name,
            functionArn: unqualified(f.arn, f.version),
            instances: [f.arn],
          },
        });
      } catch (e) {
        // Deleted between the listing and now: it runs nowhere any more.
        if ((e as Error).name === 'ResourceNotFoundException') continue;
        errors.push(`${f.arn}: ${awsError(e)}`);
      }
    }
    return { running, errors };
  }
}

/** ListFunctions with FunctionVersion ALL gives version ARNs (`…:function:resize:3`); a workload is the function. */
function unqualified(arn: string, version: string): string {
  return arn.endsWith(`:${version}`) ? arn.slice(0, -version.length - 1) : arn;
}

/**
 * Synthesized CloudFormation templates resolved to concrete values, as they would be once deployed into one test
 * account and region per stack: every Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split,
 * Fn::GetStackOutput (the cross-region references) and pseudo parameter becomes a string. Physical names are made up
 * deterministically from logical IDs, in the format AWS gives each resource type, so that ARNs, names and URLs
 * agree wherever they meet.
 */

/** A synthesized stack: its name, environment and template. */
export interface StackTemplate {
  readonly stackName: string;
  readonly account: string;
  readonly region: string;
  readonly template: { Resources: Record<string, CfnResource>; Outputs?: Record<string, { Value: unknown }> };
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

/** A resource with its properties resolved, and the identifiers AWS would give it. */
export interface ResolvedResource {
  readonly stack: string;
  readonly logicalId: string;
  readonly type: string;
  readonly account: string;
  readonly region: string;
  readonly properties: Record<string, unknown>;
  /** What `Ref` returns for it. */
  readonly ref: string;
  /** Its ARN (or the closest identifier when the type has none). */
  readonly arn: string;
}

const PARTITION = 'aws';

/** A physical name AWS would generate: `<stack>-<logical id>-<suffix>`, lower case where the type wants it. */
function physicalName(stack: string, logicalId: string, lower = false): string {
  const name = `${stack}-${logicalId}`.slice(0, 50);
  return lower ? name.toLowerCase() : name;
}

/** Ref and the attributes of one resource, by type. */
function identifiers(
  stack: StackTemplate,
  logicalId: string,
  type: string,
  properties: Record<string, unknown> = {},
): { ref: string; attrs: Record<string, string> } {
  const { account, region } = stack;
  const name = physicalName(stack.stackName, logicalId);
  const lower = physicalName(stack.stackName, logicalId, true);
  switch (type) {
    case 'AWS::S3::Bucket': {
      const bucket = (properties.BucketName as string | undefined) ?? lower;
      return {
        ref: bucket,
        attrs: {
          Arn: `arn:${PARTITION}:s3:::${bucket}`,
          DomainName: `${bucket}.s3.amazonaws.com`,
          RegionalDomainName: `${bucket}.s3.${region}.amazonaws.com`,
        },
      };
    }
    case 'AWS::IAM::Role':
      return {
        ref: name,
        attrs: { Arn: `arn:${PARTITION}:iam::${account}:role/${name}`, RoleId: `AROA${logicalId}` },
      };
    case 'AWS::KMS::Key': {
      const id = keyId(logicalId);
      return { ref: id, attrs: { Arn: `arn:${PARTITION}:kms:${region}:${account}:key/${id}`, KeyId: id } };
    }
    case 'AWS::SQS::Queue':
      return {
        ref: `https://sqs.${region}.amazonaws.com/${account}/${name}`,
        attrs: { Arn: `arn:${PARTITION}:sqs:${region}:${account}:${name}`, QueueName: name },
      };
    case 'AWS::SNS::Topic': {
      const arn = `arn:${PARTITION}:sns:${region}:${account}:${name}`;
      return { ref: arn, attrs: { TopicArn: arn, TopicName: name } };
    }
    case 'AWS::Lambda::Function':
      return { ref: name, attrs: { Arn: `arn:${PARTITION}:lambda:${region}:${account}:function:${name}` } };
    case 'AWS::Lambda::Version':
      return {
        ref: `arn:${PARTITION}:lambda:${region}:${account}:function:${name}:1`,
        attrs: { Version: '1' },
      };
    case 'AWS::Events::Rule':
      return { ref: name, attrs: { Arn: `arn:${PARTITION}:events:${region}:${account}:rule/${name}` } };
    case 'AWS::CloudWatch::Alarm':
      return { ref: name, attrs: { Arn: `arn:${PARTITION}:cloudwatch:${region}:${account}:alarm:${name}` } };
    case 'AWS::Logs::LogGroup':
      return { ref: name, attrs: { Arn: `arn:${PARTITION}:logs:${region}:${account}:log-group:${name}:*` } };
    case 'AWS::CloudTrail::Trail':
      return { ref: name, attrs: { Arn: `arn:${PARTITION}:cloudtrail:${region}:${account}:trail/${name}` } };
    default:
      return { ref: name, attrs: { Arn: `arn:${PARTITION}:unknown:${region}:${account}:${name}` } };
  }
}

/** A key id in KMS's UUID format, the same for the same logical ID. */
function keyId(logicalId: string): string {
  let h = 0;
  for (const c of logicalId) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  const hex = (h.toString(16).padStart(8, '0') + logicalId.length.toString(16).padStart(4, '0')).padEnd(
    32,
    '0',
  );
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Every stack of an app, resolved. Throws on an intrinsic it cannot resolve, naming it. */
export function resolveStacks(stacks: readonly StackTemplate[]): ResolvedResource[] {
  const byName = new Map(stacks.map((s) => [s.stackName, s]));
  const ids = new Map<string, { ref: string; attrs: Record<string, string> }>();
  const key = (stack: string, id: string) => `${stack}/${id}`;
  // Identifiers first (they depend only on the unresolved BucketName, which our stacks never set).
  for (const s of stacks) {
    for (const [id, r] of Object.entries(s.template.Resources)) {
      const props = r.Properties ?? {};
      const explicitName = typeof props.BucketName === 'string' ? { BucketName: props.BucketName } : {};
      ids.set(key(s.stackName, id), identifiers(s, id, r.Type, explicitName));
    }
  }

  const resolve = (stack: StackTemplate, value: unknown): unknown => {
    if (Array.isArray(value)) return value.map((v) => resolve(stack, v)).filter((v) => v !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [fn, arg] = entries[0];
      switch (fn) {
        case 'Ref':
          return ref(stack, arg as string);
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split(/\.(.+)/);
          return getAtt(stack, id, attr);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, unknown[]];
          return (resolve(stack, parts) as unknown[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          return (resolve(stack, list) as unknown[])[Number(resolve(stack, index))];
        }
        case 'Fn::Split': {
          const [sep, text] = arg as [string, unknown];
          return String(resolve(stack, text)).split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg)
            ? (arg as [string, Record<string, unknown>])
            : [arg as string, {} as Record<string, unknown>];
          const bound = resolve(stack, vars) as Record<string, unknown>;
          return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
            if (name in bound) return String(bound[name]);
            if (name.includes('.')) {
              const [id, attr] = name.split(/\.(.+)/);
              return getAtt(stack, id, attr);
            }
            return String(ref(stack, name));
          });
        }
        case 'Fn::GetStackOutput': {
          const { StackName, OutputName } = arg as { StackName: string; OutputName: string };
          const other = byName.get(StackName);
          const output = other?.template.Outputs?.[OutputName];
          if (!other || !output)
            throw new Error(`Fn::GetStackOutput: no output ${OutputName} in ${StackName}`);
          return resolve(other, output.Value);
        }
        case 'Fn::ImportValue':
        case 'Fn::If':
        case 'Fn::FindInMap':
        case 'Fn::GetAZs':
          throw new Error(`${stack.stackName}: cannot resolve ${fn} (${JSON.stringify(arg).slice(0, 120)})`);
      }
    }
    return Object.fromEntries(
      entries.map(([k, v]) => [k, resolve(stack, v)]).filter(([, v]) => v !== NO_VALUE),
    );
  };

  const ref = (stack: StackTemplate, name: string): string | typeof NO_VALUE => {
    switch (name) {
      case 'AWS::AccountId':
        return stack.account;
      case 'AWS::Region':
        return stack.region;
      case 'AWS::Partition':
        return PARTITION;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return stack.stackName;
      case 'AWS::StackId':
        return `arn:${PARTITION}:cloudformation:${stack.region}:${stack.account}:stack/${stack.stackName}/0`;
      case 'AWS::NoValue':
        return NO_VALUE;
    }
    const found = ids.get(key(stack.stackName, name));
    if (found) return found.ref;
    // Parameters: the bootstrap version is the only one our stacks have.
    if (name === 'BootstrapVersion') return '/cdk-bootstrap/hnb659fds/version';
    throw new Error(`${stack.stackName}: Ref to unknown ${name}`);
  };

  const getAtt = (stack: StackTemplate, id: string, attr: string): string => {
    const found = ids.get(key(stack.stackName, id));
    if (!found) throw new Error(`${stack.stackName}: Fn::GetAtt of unknown resource ${id}`);
    return found.attrs[attr] ?? `${found.ref}.${attr}`;
  };

  const out: ResolvedResource[] = [];
  for (const s of stacks) {
    for (const [id, r] of Object.entries(s.template.Resources)) {
      const found = ids.get(key(s.stackName, id))!;
      out.push({
        stack: s.stackName,
        logicalId: id,
        type: r.Type,
        account: s.account,
        region: s.region,
        properties: resolve(s, r.Properties ?? {}) as Record<string, unknown>,
        ref: found.ref,
        arn: found.attrs.Arn ?? found.attrs.TopicArn ?? found.ref,
      });
    }
  }
  return out;
}

const NO_VALUE = Symbol('AWS::NoValue');

import { createHash } from 'node:crypto';

/** A CloudFormation template, as synthesized. */
export interface CfnTemplate {
  readonly Resources?: Record<string, CfnResource>;
  readonly Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
  readonly Conditions?: Record<string, unknown>;
  readonly Mappings?: Record<string, Record<string, Record<string, unknown>>>;
}

/** One resource of a template. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Condition?: string;
}

/** A stack of a deployment: its template and where it is deployed. */
export interface StackInput {
  readonly name: string;
  readonly account: string;
  readonly region: string;
  readonly template: CfnTemplate;
}

/** A resource after resolution: every intrinsic replaced by a concrete value. */
export interface ResolvedResource {
  readonly stack: string;
  readonly region: string;
  readonly logicalId: string;
  readonly type: string;
  readonly properties: Record<string, unknown>;
  /** What `Ref` gives. */
  readonly ref: string;
  /** What `Fn::GetAtt … Arn` gives, when the type has an ARN. */
  readonly arn?: string;
}

/** Marks a value to drop (`AWS::NoValue`). */
const NO_VALUE = Symbol('AWS::NoValue');

/** A short, stable digest of a string, for fake physical names and IDs. */
function digest(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * Resolves the templates of one deployment (stacks in one account, any regions) to concrete values, as
 * CloudFormation would: pseudo parameters, `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`,
 * `Fn::If` (with the templates' conditions), `Fn::FindInMap`, `Fn::ImportValue` and the cross-region
 * `Fn::GetStackOutput`. Physical names are fake but deterministic: `<stack>-<logical ID>-<digest>`, in the form
 * each service uses (lower case for buckets, a UUID-like ID for keys, a URL for queues). Anything it cannot resolve
 * throws, naming the stack and the expression: a silent placeholder would hide a broken reference.
 */
export class Resolver {
  private readonly stacks = new Map<string, StackInput>();
  private readonly attributes = new Map<string, Record<string, string>>();
  readonly partition = 'aws';
  readonly urlSuffix = 'amazonaws.com';

  constructor(stacks: readonly StackInput[]) {
    for (const s of stacks) this.stacks.set(s.name, s);
  }

  /** Every resource of every stack, resolved (resources whose condition is false are left out). */
  resources(): ResolvedResource[] {
    const out: ResolvedResource[] = [];
    for (const stack of this.stacks.values()) {
      for (const [logicalId, resource] of Object.entries(stack.template.Resources ?? {})) {
        if (resource.Condition && !this.condition(stack, resource.Condition)) continue;
        const attrs = this.attributesOf(stack, logicalId);
        out.push({
          stack: stack.name,
          region: stack.region,
          logicalId,
          type: resource.Type,
          properties: this.resolve(stack.name, resource.Properties ?? {}) as Record<string, unknown>,
          ref: attrs.Ref,
          ...(attrs.Arn ? { arn: attrs.Arn } : {}),
        });
      }
    }
    return out;
  }

  /** The value of an expression in a stack's template. */
  resolve(stackName: string, value: unknown): unknown {
    const stack = this.stack(stackName);
    const v = this.value(stack, value);
    return v === NO_VALUE ? undefined : v;
  }

  private stack(name: string): StackInput {
    const s = this.stacks.get(name);
    if (!s)
      throw new Error(`no stack ${name} in this deployment (have ${[...this.stacks.keys()].join(', ')})`);
    return s;
  }

  private value(stack: StackInput, value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.value(stack, v)).filter((v) => v !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, arg] = entries[0];
      if (key === 'Ref' || key.startsWith('Fn::') || key === 'Condition')
        return this.intrinsic(stack, key, arg);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const r = this.value(stack, v);
      if (r !== NO_VALUE) out[k] = r;
    }
    return out;
  }

  private str(stack: StackInput, value: unknown, what: string): string {
    const v = this.value(stack, value);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v !== 'string')
      throw new Error(`${stack.name}: ${what} is not a string: ${JSON.stringify(v)}`);
    return v;
  }

  private intrinsic(stack: StackInput, fn: string, arg: unknown): unknown {
    const fail = (why: string) => {
      throw new Error(`${stack.name}: cannot resolve ${fn} ${JSON.stringify(arg)}: ${why}`);
    };
    switch (fn) {
      case 'Ref': {
        const name = String(arg);
        if (name === 'AWS::NoValue') return NO_VALUE;
        const pseudo = this.pseudo(stack, name);
        if (pseudo !== undefined) return pseudo;
        if (!stack.template.Resources?.[name]) return fail('no such resource or pseudo parameter');
        return this.attributesOf(stack, name).Ref;
      }
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? arg : String(arg).split(/\.(.*)/s);
        return this.getAtt(stack, String(id), this.str(stack, attr, 'attribute name'));
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, unknown];
        const list = this.value(stack, parts);
        if (!Array.isArray(list)) return fail('the list is not a list');
        return list.map((p) => this.str(stack, p, 'Fn::Join element')).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [unknown, unknown];
        const l = this.value(stack, list);
        const i = Number(this.value(stack, index));
        if (!Array.isArray(l) || !(i >= 0 && i < l.length)) return fail('index out of the list');
        return l[i];
      }
      case 'Fn::Split': {
        const [sep, source] = arg as [string, unknown];
        return this.str(stack, source, 'Fn::Split source').split(sep);
      }
      case 'Fn::Sub': {
        const [template, vars] = (Array.isArray(arg) ? arg : [arg, {}]) as [string, Record<string, unknown>];
        return template.replace(/\$\{(!?)([^}]+)\}/g, (_m, literal: string, name: string) => {
          if (literal) return `\${${name}}`;
          if (name in vars) return this.str(stack, vars[name], `Fn::Sub variable ${name}`);
          if (name.includes('.') && !name.startsWith('AWS::')) {
            const [id, attr] = name.split(/\.(.*)/s);
            return this.getAtt(stack, id, attr);
          }
          return this.str(stack, { Ref: name }, `Fn::Sub \${${name}}`);
        });
      }
      case 'Fn::If': {
        const [cond, a, b] = arg as [string, unknown, unknown];
        return this.value(stack, this.condition(stack, cond) ? a : b);
      }
      case 'Fn::Equals':
      case 'Fn::Not':
      case 'Fn::And':
      case 'Fn::Or':
      case 'Condition':
        return this.conditionExpr(stack, { [fn]: arg });
      case 'Fn::FindInMap': {
        const [map, top, second] = (arg as unknown[]).map((a) => this.str(stack, a, 'Fn::FindInMap key'));
        const found = stack.template.Mappings?.[map]?.[top]?.[second];
        if (found === undefined) return fail('no such mapping entry');
        return found;
      }
      case 'Fn::Base64':
        return this.str(stack, arg, 'Fn::Base64 input');
      case 'Fn::ImportValue': {
        const name = this.str(stack, arg, 'export name');
        for (const other of this.stacks.values()) {
          if (other.region !== stack.region) continue;
          for (const output of Object.values(other.template.Outputs ?? {}))
            if (output.Export && this.value(other, output.Export.Name) === name)
              return this.value(other, output.Value);
        }
        return fail('no stack of the region exports it');
      }
      case 'Fn::GetStackOutput': {
        const { StackName, Region, OutputName } = arg as Record<string, unknown>;
        const other = this.stack(this.str(stack, StackName, 'StackName'));
        const region = this.str(stack, Region, 'Region');
        if (other.region !== region) return fail(`stack ${other.name} is in ${other.region}, not ${region}`);
        const output = other.template.Outputs?.[this.str(stack, OutputName, 'OutputName')];
        if (!output) return fail(`stack ${other.name} has no such output`);
        return this.value(other, output.Value);
      }
      default:
        return fail('unsupported intrinsic');
    }
  }

  private pseudo(stack: StackInput, name: string): string | undefined {
    switch (name) {
      case 'AWS::AccountId':
        return stack.account;
      case 'AWS::Region':
        return stack.region;
      case 'AWS::Partition':
        return this.partition;
      case 'AWS::URLSuffix':
        return this.urlSuffix;
      case 'AWS::StackName':
        return stack.name;
      case 'AWS::StackId':
        return `arn:${this.partition}:cloudformation:${stack.region}:${stack.account}:stack/${stack.name}/${digest(stack.name, 8)}`;
      default:
        return undefined;
    }
  }

  private condition(stack: StackInput, name: string): boolean {
    const expr = stack.template.Conditions?.[name];
    if (expr === undefined) throw new Error(`${stack.name}: no condition ${name}`);
    return this.conditionExpr(stack, expr);
  }

  private conditionExpr(stack: StackInput, expr: unknown): boolean {
    const [fn, arg] = Object.entries(expr as Record<string, unknown>)[0];
    const args = arg as unknown[];
    switch (fn) {
      case 'Fn::Equals':
        return JSON.stringify(this.value(stack, args[0])) === JSON.stringify(this.value(stack, args[1]));
      case 'Fn::Not':
        return !this.conditionExpr(stack, args[0]);
      case 'Fn::And':
        return args.every((a) => this.conditionExpr(stack, a));
      case 'Fn::Or':
        return args.some((a) => this.conditionExpr(stack, a));
      case 'Condition':
        return this.condition(stack, String(arg));
      default:
        throw new Error(`${stack.name}: unsupported condition ${JSON.stringify(expr)}`);
    }
  }

  private getAtt(stack: StackInput, logicalId: string, attr: string): string {
    if (!stack.template.Resources?.[logicalId])
      throw new Error(`${stack.name}: Fn::GetAtt of missing resource ${logicalId}`);
    const attrs = this.attributesOf(stack, logicalId);
    const v = attrs[attr];
    if (v === undefined)
      throw new Error(
        `${stack.name}: Fn::GetAtt ${logicalId}.${attr}: the harness does not model ${attr} of ${stack.template.Resources[logicalId].Type}`,
      );
    return v;
  }

  /** `Ref` and the attributes of a resource, from its type, its properties and a fake physical name. */
  private attributesOf(stack: StackInput, logicalId: string): Record<string, string> {
    const key = `${stack.name}/${logicalId}`;
    const cached = this.attributes.get(key);
    if (cached) return cached;
    const resource = stack.template.Resources![logicalId];
    const props = resource.Properties ?? {};
    const { account, region } = stack;
    const p = this.partition;
    const fake = `${stack.name}-${logicalId}`.slice(0, 50) + `-${digest(key, 12).toUpperCase()}`;
    const named = (prop: string, fallback = fake) =>
      props[prop] !== undefined ? this.str(stack, props[prop], `${logicalId}.${prop}`) : fallback;
    let attrs: Record<string, string>;
    switch (resource.Type) {
      case 'AWS::S3::Bucket': {
        const name = named('BucketName', fake.toLowerCase());
        attrs = {
          Ref: name,
          Arn: `arn:${p}:s3:::${name}`,
          DomainName: `${name}.s3.${this.urlSuffix}`,
          RegionalDomainName: `${name}.s3.${region}.${this.urlSuffix}`,
        };
        break;
      }
      case 'AWS::KMS::Key': {
        const h = digest(key, 32);
        const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
        attrs = { Ref: id, KeyId: id, Arn: `arn:${p}:kms:${region}:${account}:key/${id}` };
        break;
      }
      case 'AWS::SQS::Queue': {
        const name = named('QueueName');
        const url = `https://sqs.${region}.${this.urlSuffix}/${account}/${name}`;
        attrs = {
          Ref: url,
          QueueUrl: url,
          QueueName: name,
          Arn: `arn:${p}:sqs:${region}:${account}:${name}`,
        };
        break;
      }
      case 'AWS::SNS::Topic': {
        const name = named('TopicName');
        const arn = `arn:${p}:sns:${region}:${account}:${name}`;
        attrs = { Ref: arn, TopicArn: arn, TopicName: name };
        break;
      }
      case 'AWS::IAM::Role': {
        const name = named('RoleName', fake.slice(0, 64));
        const path = props.Path ? this.str(stack, props.Path, 'Path') : '/';
        attrs = {
          Ref: name,
          Arn: `arn:${p}:iam::${account}:role${path}${name}`,
          RoleId: `AROA${digest(key, 17).toUpperCase()}`,
        };
        break;
      }
      case 'AWS::Lambda::Function': {
        const name = named('FunctionName', fake.slice(0, 64));
        attrs = { Ref: name, Arn: `arn:${p}:lambda:${region}:${account}:function:${name}` };
        break;
      }
      case 'AWS::Lambda::Version': {
        const fn = this.str(stack, props.FunctionName, 'FunctionName');
        const fnArn = fn.startsWith('arn:') ? fn : `arn:${p}:lambda:${region}:${account}:function:${fn}`;
        attrs = { Ref: `${fnArn}:1`, Version: '1', FunctionArn: fnArn };
        break;
      }
      case 'AWS::Events::Rule': {
        const name = named('Name');
        const bus = props.EventBusName ? this.str(stack, props.EventBusName, 'EventBusName') : 'default';
        const path = bus === 'default' ? name : `${bus}/${name}`;
        attrs = { Ref: name, Arn: `arn:${p}:events:${region}:${account}:rule/${path}` };
        break;
      }
      case 'AWS::CloudWatch::Alarm': {
        const name = named('AlarmName');
        attrs = { Ref: name, Arn: `arn:${p}:cloudwatch:${region}:${account}:alarm:${name}` };
        break;
      }
      case 'AWS::Logs::LogGroup': {
        const name = named('LogGroupName', `/aws/${fake}`);
        attrs = { Ref: name, Arn: `arn:${p}:logs:${region}:${account}:log-group:${name}:*` };
        break;
      }
      case 'AWS::CloudTrail::Trail': {
        const name = named('TrailName');
        attrs = { Ref: name, Arn: `arn:${p}:cloudtrail:${region}:${account}:trail/${name}` };
        break;
      }
      case 'AWS::SecretsManager::Secret': {
        const arn = `arn:${p}:secretsmanager:${region}:${account}:secret:${named('Name')}-${digest(key, 6)}`;
        attrs = { Ref: arn, Id: arn };
        break;
      }
      case 'AWS::Glue::Database': {
        const input = this.value(stack, props.DatabaseInput) as { Name?: string } | undefined;
        attrs = { Ref: input?.Name ?? fake.toLowerCase() };
        break;
      }
      default:
        attrs = { Ref: fake };
    }
    this.attributes.set(key, attrs);
    return attrs;
  }
}

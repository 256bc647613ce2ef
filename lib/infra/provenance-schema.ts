/**
 * The Glue (Hive) schema of the provenance log entries (lib/provenance/types.ts LogEntry), for the Athena table
 * ImageVault defines over `imagevault/provenance/`. Field names are kept here as the JSON spells them; Hive
 * lowercases column and struct field names, so the table gets lowercased names plus a JSON SerDe `mapping.<hive
 * name>` parameter for every key that is not already lowercase. Kept in one module so that a test can hold it
 * against a real record (test/infra/provenance.test.ts).
 */

/** A column type of the Glue table, as a tree: scalars, structs, arrays, maps. */
export type GlueType =
  | 'string'
  | 'int'
  | 'boolean'
  | { readonly struct: readonly GlueField[] }
  | { readonly array: GlueType }
  /** A JSON object with arbitrary keys (labels, annotations, findings): `map<string, value>`. */
  | { readonly map: GlueType };

/** A field of a struct (or a column): its JSON key and type. */
export interface GlueField {
  /** The JSON key, as written. */
  readonly name: string;
  /** Its Glue type. */
  readonly type: GlueType;
  /** Optional in the record's TypeScript type (absent when unknown). @default false */
  readonly optional?: boolean;
}

const f = (name: string, type: GlueType, optional = false): GlueField =>
  optional ? { name, type, optional } : { name, type };
const struct = (...fields: GlueField[]): GlueType => ({ struct: fields });
const array = (of: GlueType): GlueType => ({ array: of });
const map = (of: GlueType): GlueType => ({ map: of });

const PUSHER = struct(
  f('arn', 'string'),
  f('type', 'string'),
  f('accountId', 'string', true),
  f('sessionIssuer', struct(f('arn', 'string'), f('type', 'string'), f('userName', 'string', true)), true),
);

const PUSH = struct(
  f('time', 'string'),
  f('tags', array('string')),
  f('pusher', PUSHER, true),
  f('sourceIp', 'string', true),
  f('userAgent', 'string', true),
  f('identityStatus', 'string'),
  f('reason', 'string'),
  f('cloudTrailEventId', 'string', true),
);

const IMAGE = struct(
  f('mediaType', 'string'),
  f('platforms', array('string')),
  f('labels', map('string')),
  f('annotations', map('string')),
  f('source', 'string', true),
  f('revision', 'string', true),
  f('created', 'string', true),
);

const BASE = struct(
  f('status', 'string'),
  f('reason', 'string', true),
  f('detectedAt', 'string', true),
  f(
    'platforms',
    array(
      struct(
        f('platform', 'string'),
        f('reference', 'string', true),
        f('repository', 'string', true),
        f('digests', struct(f('manifest', 'string'), f('index', 'string', true)), true),
        f('method', 'string', true),
        f('verified', 'boolean', true),
        f('evidence', 'string', true),
        f('depth', 'int'),
      ),
    ),
  ),
);

const REFERRER = struct(
  f('digest', 'string'),
  f('mediaType', 'string'),
  f('artifactType', 'string', true),
  f('kind', 'string'),
  f('predicateType', 'string', true),
  f('via', 'string'),
  f(
    'signer',
    struct(
      f('tool', 'string'),
      f('identity', 'string', true),
      f('issuer', 'string', true),
      f('thumbprints', array('string'), true),
      f('note', 'string', true),
    ),
    true,
  ),
);

const SCAN = struct(
  f('status', 'string'),
  f('reason', 'string', true),
  f('scanner', 'string', true),
  f('completedAt', 'string', true),
  f('findings', map('int'), true),
  f(
    'top',
    array(
      struct(
        f('id', 'string'),
        f('severity', 'string'),
        f('package', 'string', true),
        f('version', 'string', true),
        f('fixedIn', 'string', true),
        f('uri', 'string', true),
      ),
    ),
    true,
  ),
  f('eventId', 'string', true),
);

const BUILD = struct(
  f('status', 'string'),
  f('reason', 'string', true),
  f('attestation', struct(f('digest', 'string'), f('predicateType', 'string')), true),
  f('builderId', 'string', true),
  f('invocationId', 'string', true),
  f('configSource', 'string', true),
  f('source', 'string', true),
  f('revision', 'string', true),
  f('revisionFrom', 'string', true),
  f('startedOn', 'string', true),
  f('finishedOn', 'string', true),
);

const SNAPSHOT = struct(
  f('store', 'string'),
  f('keys', struct(f('manifest', 'string'), f('record', 'string'))),
  f('versionIds', struct(f('manifest', 'string', true), f('record', 'string', true)), true),
  f('verifiedAt', 'string'),
  f('replication', 'string'),
  f('replicationReason', 'string', true),
);

const STATEMENT = struct(
  f('_type', 'string'),
  f('subject', array(struct(f('name', 'string'), f('digest', struct(f('sha256', 'string')))))),
  f('predicateType', 'string'),
  f(
    'predicate',
    struct(
      f('push', PUSH),
      f('image', IMAGE),
      f('build', BUILD, true),
      f('base', BASE),
      f('referrers', array(REFERRER)),
      f('scan', SCAN),
      f('snapshot', SNAPSHOT),
    ),
  ),
);

/** The columns of the provenance table: one row per log entry `{seq, time, repository, digest, statement, previous, hash}`. */
export const PROVENANCE_COLUMNS: readonly GlueField[] = [
  f('seq', 'int'),
  f('time', 'string'),
  f('repository', 'string'),
  f('digest', 'string'),
  f('statement', STATEMENT),
  // null for the first entry of a repository's log: present, but may be null.
  f('previous', 'string'),
  f('hash', 'string'),
];

/** The Hive spelling of a type, with lowercased field names: `struct<_type:string,predicatetype:string,…>`. */
export function hiveType(type: GlueType): string {
  if (typeof type === 'string') return type;
  if ('array' in type) return `array<${hiveType(type.array)}>`;
  if ('map' in type) return `map<string,${hiveType(type.map)}>`;
  return `struct<${type.struct.map((x) => `${x.name.toLowerCase()}:${hiveType(x.type)}`).join(',')}>`;
}

/** The table's columns as Glue takes them (CfnTable ColumnProperty). */
export function glueColumns(): Array<{ name: string; type: string }> {
  return PROVENANCE_COLUMNS.map((c) => ({ name: c.name.toLowerCase(), type: hiveType(c.type) }));
}

/**
 * `mapping.<hive name>` → JSON key for every key whose Hive name differs from it (camelCase) or that starts with an
 * underscore (`_type`), for org.openx.data.jsonserde.JsonSerDe. The mapping is by name, at every depth.
 */
export function serdeMappings(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (type: GlueType): void => {
    if (typeof type === 'string') return;
    if ('array' in type) return walk(type.array);
    if ('map' in type) return walk(type.map);
    for (const field of type.struct) {
      const hive = field.name.toLowerCase();
      if (hive !== field.name || field.name.startsWith('_')) out[`mapping.${hive}`] = field.name;
      walk(field.type);
    }
  };
  walk({ struct: PROVENANCE_COLUMNS });
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** The JSON SerDe the table reads the entries with. */
export const PROVENANCE_SERDE = 'org.openx.data.jsonserde.JsonSerDe';

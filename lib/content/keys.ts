/**
 * Every key prefix of a vault, in one place: relative to the vault's root (a directory, or a bucket and its vault
 * prefix). Plain constants with no imports, so that the infrastructure can write IAM resources from the same
 * strings the code reads and writes (`arn:…:<bucket>/<vaultPrefix>/imagevault/provenance/*`).
 *
 * The top level is a valid OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), so that any OCI tool
 * reads a directory vault, and a sync of the bucket gives the same thing. imagevault's own records live under
 * `imagevault/`. `_` and `@` start no valid repository path component, so `<repository>/_tags` or `@log` can never
 * collide with a repository name.
 */

/** The OCI layout's marker file. */
export const LAYOUT_FILE = 'oci-layout';
/** The OCI layout's index: one entry per repository:tag (its latest push). */
export const INDEX_FILE = 'index.json';
/** Content-addressed blobs and manifests: `blobs/<alg>/<hex>`. */
export const BLOBS_PREFIX = 'blobs/';
/** imagevault's own records. */
export const META_PREFIX = 'imagevault/';
/** Tag history and image records: `<repository>/_tags/<tag>/…`, `<repository>/_images/<alg>/<hex>.json`. */
export const REPOSITORIES_PREFIX = `${META_PREFIX}repositories/`;
/** Referrers of each subject: `<alg>/<hex>/<referrer>.json`. */
export const REFERRERS_PREFIX = `${META_PREFIX}referrers/`;
/** The provenance logs, pending identities and scans (lib/provenance/log.ts). */
export const PROVENANCE_PREFIX = `${META_PREFIX}provenance/`;
/** The upstream watcher's state (lib/drift/upstream-state.ts). */
export const UPSTREAM_PREFIX = `${META_PREFIX}upstream/`;
/** The in-use inventory: scans (appended), where each digest runs, per source state (lib/content/inventory.ts). */
export const INVENTORY_PREFIX = `${META_PREFIX}inventory/`;
/** Where each running digest was last seen: rewritten by every scan (the scans under `scans/` keep the history). */
export const INVENTORY_RUNNING_PREFIX = `${INVENTORY_PREFIX}running/`;
/** Legal holds: append-only hold and release records (lib/content/holds.ts). */
export const HOLDS_PREFIX = `${META_PREFIX}holds/`;
/** Retention's forget records: append-only, one per image forgotten (lib/content/forgets.ts). */
export const FORGETS_PREFIX = `${META_PREFIX}retention/forgotten/`;
/** Garbage collection's protocol files: writer sessions, runs, marks, rescues, sweeps (lib/content/gc-protocol.ts). */
export const GC_PREFIX = `${META_PREFIX}gc/`;

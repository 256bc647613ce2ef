import { readAll } from '../content/verify';
import {
  Digest,
  IndexSchema,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseManifest,
  referrerDescriptor,
  subjectOf,
  type Descriptor,
} from '../oci';
import { discard, responseTooLarge } from './body';
import { manifestPath, type RepositoryContext } from './context';
import { RegistryError } from './errors';
import { ACCEPT_MANIFESTS, contentType } from './metadata';
import { paginate } from './pagination';
import { header, type TransportResponse } from './transport';

/*
 * Referrers (distribution spec v1.1): read from the referrers API where the registry has one, else from the index
 * under the referrers tag schema's fallback tag, which a pusher keeps up to date itself.
 */

/** Concurrent referrer pushes race on the fallback tag; with If-Match a loser re-reads, a few times. */
const REFERRERS_UPDATE_ATTEMPTS = 3;

/**
 * The manifests whose subject is `desc`: from the referrers API, or, where the distribution spec says a client
 * falls back (a 404: a registry with the API never answers it; or an answer that is not an image index), from the
 * index under the referrers tag schema's fallback tag. Any other answer (a 400, a 405, a server error) is an
 * error naming the registry: falling back there would lose signatures and attestations without a word.
 */
export async function listReferrers(
  ctx: RepositoryContext,
  desc: Descriptor,
  warnOnce?: (key: string, line: string) => void,
): Promise<Descriptor[]> {
  const url = `/v2/${ctx.name}/referrers/${desc.digest}`;
  let res;
  try {
    res = await ctx.transport.send({
      method: 'GET',
      url,
      headers: { accept: MediaType.OciIndex },
      scopes: ctx.pullScopes,
      expect: [200, 404],
    });
  } catch (e) {
    if (!(e instanceof RegistryError) || e.status === undefined) throw e;
    throw new RegistryError({
      method: 'GET',
      url: e.url,
      status: e.status,
      errors: e.errors,
      detail: `the referrers API of ${ctx.registry} refused the request for ${ctx.name}@${desc.digest} (a registry without the API answers 404)`,
      cause: e,
    });
  }
  if (res.status === 200 && isIndexResponse(res)) {
    return referrersFromApi(ctx, res);
  }
  discard(res.body);
  const why =
    res.status === 404
      ? 'answers 404'
      : `answered ${contentType(res.headers) ?? 'no content type'}, not an image index`;
  warnOnce?.(
    `referrers:${res.status}`,
    `${ctx.registry} has no referrers API (GET ${url} ${why}); referrers are read from the referrers tag schema (<alg>-<hex> tags)`,
  );
  return referrersFromTag(ctx, desc.digest);
}

async function referrersFromApi(ctx: RepositoryContext, first: TransportResponse): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const pages = paginate(
    ctx.transport,
    {
      url: first.url.toString(),
      headers: { accept: MediaType.OciIndex },
      scopes: ctx.pullScopes,
      response: first,
    },
    (json, url) => indexManifests(json, 'GET', url),
  );
  for await (const d of pages) out.push(d);
  return out;
}

async function referrersFromTag(ctx: RepositoryContext, subject: string): Promise<Descriptor[]> {
  const res = await ctx.transport.send({
    method: 'GET',
    url: manifestPath(ctx.name, referrersTag(subject)),
    headers: { accept: ACCEPT_MANIFESTS },
    scopes: ctx.pullScopes,
    expect: [200, 404],
  });
  if (res.status === 404) {
    discard(res.body);
    return [];
  }
  const bytes = await readAll(res.body, MAX_MANIFEST_BYTES, responseTooLarge('GET', res.url));
  return indexManifests(parseJson(bytes, 'GET', res.url), 'GET', res.url);
}

/**
 * The distribution spec's client-side referrers upkeep: read the index under `<alg>-<hex>` (or start an empty
 * one), add the referrer's descriptor unless present, PUT it back with If-Match so a concurrent update is not lost.
 */
export async function addToReferrersTag(
  ctx: RepositoryContext,
  subject: string,
  entry: Descriptor,
): Promise<void> {
  const tag = referrersTag(subject);
  for (let attempt = 1; attempt <= REFERRERS_UPDATE_ATTEMPTS; attempt++) {
    const current = await ctx.transport.send({
      method: 'GET',
      url: manifestPath(ctx.name, tag),
      headers: { accept: ACCEPT_MANIFESTS },
      scopes: ctx.pushScopes,
      expect: [200, 404],
    });
    let index: { manifests: Descriptor[] } & Record<string, unknown>;
    if (current.status === 404) {
      discard(current.body);
      index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    } else {
      const bytes = await readAll(current.body, MAX_MANIFEST_BYTES, responseTooLarge('GET', current.url));
      index = referrersIndex(bytes, contentType(current.headers), current.url);
    }
    if (index.manifests.some((m) => m.digest === entry.digest)) return;
    index.manifests.push(entry);
    const etag = header(current.headers, 'etag');
    const res = await ctx.transport.send({
      method: 'PUT',
      url: manifestPath(ctx.name, tag),
      headers: { 'content-type': MediaType.OciIndex, ...(etag ? { 'if-match': etag } : {}) },
      body: JSON.stringify(index),
      scopes: ctx.pushScopes,
      expect: [201, 412],
    });
    discard(res.body);
    if (res.status === 201) return;
  }
  throw new RegistryError({
    method: 'PUT',
    url: `${ctx.registry}/${ctx.name}:${tag}`,
    detail: `referrers index changed during ${REFERRERS_UPDATE_ATTEMPTS} updates`,
  });
}

/**
 * The referrers tag schema: `<alg>-<ref>`, the algorithm cut to 32 characters and the encoded digest to 64, so a
 * sha512 subject still yields a valid (≤ 128 character) tag. For sha256 this is the whole digest.
 */
export function referrersTag(subjectDigest: string): string {
  const d = Digest.parse(subjectDigest);
  return `${d.algorithm.slice(0, 32)}-${d.hex.slice(0, 64)}`;
}

/**
 * The subject of manifest bytes and the descriptor a referrers list holds for them: artifactType is the manifest's
 * own, else its config's media type (distribution spec), and every annotation is copied.
 */
export function referrerOf(
  bytes: Uint8Array,
  mediaType: string,
): { subject: string; entry: Descriptor } | undefined {
  let node;
  try {
    node = parseManifest(bytes, mediaType);
  } catch {
    return undefined; // not ours to judge: the registry accepted it, and a manifest we cannot read has no subject we know
  }
  const subject = subjectOf(node);
  if (!subject) return undefined;
  const desc = { mediaType, digest: Digest.of(bytes).toString(), size: bytes.length };
  return { subject: subject.digest, entry: referrerDescriptor(desc, node) };
}

function referrersIndex(
  bytes: Buffer,
  served: string | undefined,
  url: URL,
): { manifests: Descriptor[] } & Record<string, unknown> {
  const json = parseJson(bytes, 'GET', url) as Record<string, unknown>;
  const mediaType = (json.mediaType as string | undefined) ?? served;
  const parsed = IndexSchema.safeParse(json);
  if (mediaType !== MediaType.OciIndex || !parsed.success) {
    // Spec: a fallback tag holding anything but an index is reported, not overwritten.
    throw new RegistryError({
      method: 'GET',
      url,
      detail: `referrers tag holds ${mediaType ?? 'unknown content'}, not an OCI index`,
    });
  }
  // The raw entries, not zod's copies: other clients' descriptors are written back exactly as they were.
  return json as { manifests: Descriptor[] } & Record<string, unknown>;
}

function indexManifests(json: unknown, method: string, url: URL): Descriptor[] {
  const parsed = IndexSchema.safeParse(json);
  if (!parsed.success)
    throw new RegistryError({ method, url, detail: 'referrers response is not an OCI index' });
  return parsed.data.manifests;
}

function isIndexResponse(res: TransportResponse): boolean {
  const ct = contentType(res.headers);
  return ct === undefined || ct === MediaType.OciIndex || ct === 'application/json';
}

function parseJson(bytes: Buffer, method: string, url: URL): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new RegistryError({ method, url, detail: 'response is not JSON', cause: e });
  }
}

import { readAll } from '../content/verify';
import { responseTooLarge } from './body';
import { RegistryError } from './errors';
import { header, type Transport, type TransportResponse } from './transport';

/** ECR answers n > 1000 with an error, and 1000 keeps a Docker Hub tag listing to a handful of requests. */
export const DEFAULT_PAGE_SIZE = 1000;
export const MAX_PAGE_SIZE = 1000;

/** A page of a tag or catalog listing is a JSON array of short names; this bounds a runaway one. */
const PAGE_BODY_LIMIT = 16 * 1024 * 1024;

/**
 * Walks a paginated listing (`/tags/list`, `/_catalog`, `/referrers/`): the first request carries the query, later
 * ones follow the `Link: <…>; rel="next"` header as given, since it carries the registry's own cursor.
 */
export async function* paginate<T>(
  transport: Transport,
  first: {
    url: string;
    query?: Record<string, string>;
    headers?: Record<string, string>;
    scopes: readonly string[];
    /** The first page, when the caller already requested it (to learn whether the endpoint exists). */
    response?: TransportResponse;
  },
  items: (json: unknown, url: URL) => T[],
): AsyncGenerator<T> {
  let next: URL | undefined;
  let query = first.query;
  let url: string | URL = first.url;
  let pending = first.response;
  for (;;) {
    const res =
      pending ??
      (await transport.send({
        method: 'GET',
        url,
        query,
        headers: first.headers,
        scopes: first.scopes,
        expect: [200],
      }));
    pending = undefined;
    const bytes = await readAll(res.body, PAGE_BODY_LIMIT, responseTooLarge('GET', res.url));
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new RegistryError({ method: 'GET', url: res.url, detail: 'response is not JSON', cause: e });
    }
    yield* items(json, res.url);
    next = nextLink(header(res.headers, 'link'), res.url);
    if (!next) return;
    url = next;
    query = undefined;
  }
}

/** The `rel="next"` target of an RFC 8288 Link header, resolved against the URL that returned it. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const m of link.matchAll(/<([^>]*)>([^,<]*)/g)) {
    const params = m[2];
    if (/;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(params)) return new URL(m[1], base);
  }
  return undefined;
}

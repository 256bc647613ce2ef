import { parseChallenges } from '../../../lib/registry/challenge';
import { referrersTag } from '../../../lib/registry/referrers';
import { CredentialError, RegistryError, parseErrorBody, redactUrl } from '../../../lib/registry/errors';
import { parseRateLimitRemaining, rateLimitOf } from '../../../lib/registry/metadata';
import { nextLink } from '../../../lib/registry/pagination';
import { RetryPolicy, isRetryableNetworkError, parseRetryAfter } from '../../../lib/registry/retry';
import { isLoopback } from '../../../lib/registry/transport';

describe('Function: parseChallenges', () => {
  it('parses a bearer challenge with quoted parameters', () => {
    // Act
    const [c] = parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    );

    // Assess
    expect(c).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/ubuntu:pull',
      },
    });
  });

  it('keeps commas and escaped quotes inside quoted values', () => {
    const [c] = parseChallenges(
      'Bearer realm="https://a/token",scope="repository:a:pull,push",error="say \\"hi\\""',
    );
    expect(c.params).toEqual({
      realm: 'https://a/token',
      scope: 'repository:a:pull,push',
      error: 'say "hi"',
    });
  });

  it('splits several challenges in one header and lowercases schemes and names', () => {
    const cs = parseChallenges('Basic realm="Registry Realm", BEARER Realm=https://a/token, Service="svc"');
    expect(cs).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://a/token', service: 'svc' } },
    ]);
  });

  it('accepts a scheme without parameters, spaces around =, and several header lines', () => {
    const cs = parseChallenges(['Negotiate', 'Bearer realm = "https://a/t" , service = s']);
    expect(cs).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } },
    ]);
  });

  it('drops an unterminated quoted value instead of throwing', () => {
    expect(parseChallenges('Bearer realm="https://a/t",service="oops')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://a/t' } },
    ]);
  });

  it('returns nothing for an absent or empty header', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
  });
});

describe('Function: nextLink', () => {
  const base = new URL('http://127.0.0.1:5000/v2/app/tags/list?n=2');

  it('resolves a relative rel="next" target against the request URL', () => {
    expect(nextLink('</v2/app/tags/list?n=2&last=b>; rel="next"', base)?.toString()).toBe(
      'http://127.0.0.1:5000/v2/app/tags/list?n=2&last=b',
    );
  });

  it('picks next among several links and accepts an unquoted rel', () => {
    const link = '<https://r/v2/a?p=1>; rel="prev", <https://r/v2/a?p=3>; rel=next';
    expect(nextLink(link, base)?.toString()).toBe('https://r/v2/a?p=3');
  });

  it('returns undefined without a next link', () => {
    expect(nextLink(undefined, base)).toBeUndefined();
    expect(nextLink('<https://r/v2/a?p=1>; rel="prev"', base)).toBeUndefined();
  });
});

describe('Function: parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('3')).toBe(3000);
  });

  it('reads an HTTP date relative to now', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });

  it('ignores garbage', () => {
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('Class: RetryPolicy', () => {
  it('caps Retry-After at maxDelayMs', () => {
    expect(new RetryPolicy({ maxDelayMs: 50 }).delay(1, 120_000)).toBe(50);
  });

  it('draws backoff with full jitter under a doubling ceiling', () => {
    const p = new RetryPolicy({ baseDelayMs: 100, maxDelayMs: 300 });
    for (let i = 0; i < 50; i++) {
      expect(p.delay(1)).toBeLessThanOrEqual(100);
      expect(p.delay(3)).toBeLessThanOrEqual(300);
    }
  });

  it('treats resets and timeouts as retryable, wherever they are in the cause chain', () => {
    expect(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryableNetworkError(new Error('x', { cause: { code: 'UND_ERR_SOCKET' } }))).toBe(true);
    expect(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }))).toBe(false);
  });
});

describe('Class: RegistryError', () => {
  it('names method, URL and the spec codes', () => {
    // Act
    const e = new RegistryError({
      method: 'GET',
      url: 'http://127.0.0.1:5000/v2/app/manifests/1.0',
      status: 404,
      errors: parseErrorBody(
        '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1.0"}}]}',
      ),
    });

    // Assess
    expect(e.message).toBe(
      'GET http://127.0.0.1:5000/v2/app/manifests/1.0: 404 MANIFEST_UNKNOWN: manifest unknown',
    );
    expect(e.code()).toBe('MANIFEST_UNKNOWN');
    expect(e.errors[0].detail).toEqual({ Tag: '1.0' });
    expect(e.temporary).toBe(false);
    expect(e).toBeInstanceOf(Error);
  });

  it('says the status text when the body has no spec errors', () => {
    const e = new RegistryError({ method: 'HEAD', url: 'http://r/v2/a/blobs/sha256:1', status: 404 });
    expect(e.message).toBe('HEAD http://r/v2/a/blobs/sha256:1: 404 Not Found');
    expect(e.code()).toBeUndefined();
  });

  it('keeps credentials and signed query strings out of the URL', () => {
    expect(redactUrl('https://user:pw@bucket.s3.amazonaws.com/blob?X-Amz-Signature=abc')).toBe(
      'https://bucket.s3.amazonaws.com/blob',
    );
    const e = new RegistryError({ method: 'GET', url: 'https://u:p@r/v2/?x=1', status: 500 });
    expect(e.url).toBe('https://r/v2/');
    expect(e.message).not.toContain('u:p');
  });

  it('is temporary for 429 and 5xx, for UNAVAILABLE-like codes and for dropped connections', () => {
    expect(new RegistryError({ method: 'GET', url: 'http://r/', status: 429 }).temporary).toBe(true);
    expect(new RegistryError({ method: 'GET', url: 'http://r/', status: 503 }).temporary).toBe(true);
    expect(
      new RegistryError({
        method: 'GET',
        url: 'http://r/',
        status: 400,
        errors: [{ code: 'TOOMANYREQUESTS' }],
      }).temporary,
    ).toBe(true);
    expect(
      new RegistryError({
        method: 'GET',
        url: 'http://r/',
        cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
      }).temporary,
    ).toBe(true);
    expect(
      new CredentialError({ method: 'docker-credential-x get', url: 'r', cause: new Error('no') }).temporary,
    ).toBe(false);
  });

  it('ignores bodies that are not spec errors', () => {
    expect(parseErrorBody('<html>bad gateway</html>')).toEqual([]);
    expect(parseErrorBody('{"errors":[{"message":"no code"}]}')).toEqual([]);
  });
});

describe('Function: referrersTag', () => {
  it('is <alg>-<hex> for sha256', () => {
    expect(referrersTag(`sha256:${'ab'.repeat(32)}`)).toBe(`sha256-${'ab'.repeat(32)}`);
  });

  it('cuts a sha512 digest to 64 characters so the tag stays valid', () => {
    expect(referrersTag(`sha512:${'c'.repeat(128)}`)).toBe(`sha512-${'c'.repeat(64)}`);
  });
});

describe('Function: isLoopback', () => {
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '[::1]', '::1'])('is true for %s', (h) => {
    expect(isLoopback(h)).toBe(true);
  });

  it.each(['10.0.0.1', 'registry.example.com', '128.0.0.1', '[::2]'])('is false for %s', (h) => {
    expect(isLoopback(h)).toBe(false);
  });
});

describe('Function: rateLimitOf', () => {
  it("reads Docker Hub's limit, remaining count and window, and Retry-After", () => {
    expect(
      rateLimitOf({
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '0;w=21600',
        'retry-after': '30',
      }),
    ).toEqual({ limit: 100, remaining: 0, windowSeconds: 21600, retryAfterMs: 30000 });
  });

  it('leaves out what the registry did not send or sent unreadably', () => {
    expect(rateLimitOf({ 'ratelimit-remaining': 'unlimited', 'retry-after': 'soon' })).toEqual({});
    expect(rateLimitOf({})).toEqual({});
  });

  it('agrees with parseRateLimitRemaining on the remaining count', () => {
    expect(rateLimitOf({ 'ratelimit-remaining': ' 7' }).remaining).toBe(parseRateLimitRemaining(' 7'));
  });
});

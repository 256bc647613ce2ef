import { REDACTED, redactSecrets } from '../../../lib/registry/redact';

describe('Function: redactSecrets', () => {
  // Each case: what a server, a helper or a URL might put in front of a user, and the secret that must not survive.
  const cases: [string, string, string][] = [
    ['an echoed Basic header', 'bad request: Authorization: Basic dXNlcjpodW50ZXIy', 'dXNlcjpodW50ZXIy'],
    ['an echoed Bearer header', '{"headers":{"Authorization":"Bearer abc.def-ghi_jkl"}}', 'abc.def-ghi_jkl'],
    ['a header list in JSON', '"Authorization": ["Bearer s3cr3tt0k3nvalue"]', 's3cr3tt0k3nvalue'],
    ['a proxy header', 'Proxy-Authorization: Basic cHJveHk6cHc=', 'cHJveHk6cHc='],
    ['a bare Bearer in prose', 'invalid credential Bearer qwertyuiopasdfgh for realm', 'qwertyuiopasdfgh'],
    [
      'a JWT',
      'token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eXoifQ.c2lnbmF0dXJlLXZhbHVl expired',
      'eyJzdWIiOiJ4eXoifQ',
    ],
    ['user and password in a URL', 'GET https://alice:hunter2@registry.example.com/v2/', 'hunter2'],
    [
      'a token in a query string',
      'https://auth.example.com/token?service=r&token=abcdef123456',
      'abcdef123456',
    ],
    [
      'an S3 signature',
      'https://b.s3.amazonaws.com/k?X-Amz-Signature=deadbeefcafe&X-Amz-Expires=60',
      'deadbeefcafe',
    ],
    ['a JSON token field', '{"token":"tok-123456789","expires_in":60}', 'tok-123456789'],
    ['a JSON access_token', '{"access_token": "at-987654321"}', 'at-987654321'],
    ['a helper printing its secret', 'error: credentials rejected (Secret: "pa55w0rd!")', 'pa55w0rd!'],
    ['key=value on stderr', 'login failed password=correcthorse user=bob', 'correcthorse'],
    ['an identity token', '{"IdentityToken":"idt-abcdefgh"}', 'idt-abcdefgh'],
    [
      'an AWS secret after its key id',
      'AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      'wJalrXUtnFEMI',
    ],
    ['a form body', 'grant_type=password&username=bob&password=tr0ub4dor', 'tr0ub4dor'],
  ];

  it.each(cases)('removes %s', (_what, text, secret) => {
    const out = redactSecrets(text);
    expect(out).not.toContain(secret);
    expect(out).toContain(REDACTED);
  });

  it('keeps what is needed to understand the failure', () => {
    expect(redactSecrets('GET https://alice:hunter2@registry.example.com/v2/: 401 UNAUTHORIZED')).toBe(
      `GET https://${REDACTED}@registry.example.com/v2/: 401 UNAUTHORIZED`,
    );
    expect(redactSecrets('Authorization: Basic dXNlcjpodW50ZXIy')).toBe(`Authorization: Basic ${REDACTED}`);
  });

  it('leaves ordinary text, digests and references alone', () => {
    const text =
      'HEAD http://127.0.0.1:5000/v2/app/manifests/1: 404 MANIFEST_UNKNOWN: manifest unknown; ' +
      'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef tokens per second';
    expect(redactSecrets(text)).toBe(text);
  });
});

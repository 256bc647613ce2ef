/*
 * Secrets out of anything we print or log. Registries and token services sometimes echo a request back in an error
 * body (the Authorization header, a token), credential helpers print what they were given, and redirect targets
 * carry signatures: none of that may reach a terminal, a CI log or CloudWatch. Applied where such text enters an
 * error (RegistryError, CredentialError) and once more on every line the CLI prints, so a path that forgets it still
 * prints nothing secret. No imports: the CLI's entry point uses it before anything else is loaded.
 */

export const REDACTED = '[REDACTED]';

/** Query parameters and JSON/form fields whose values are credentials. */
const SECRET_NAMES =
  'access_token|refresh_token|id_token|identitytoken|identity_token|registrytoken|token|password|passwd|secret|' +
  'client_secret|secretaccesskey|secret_access_key|sessiontoken|session_token|x-amz-signature|x-amz-credential|' +
  'x-amz-security-token|signature|sig|auth';

type Replacement = string | ((match: string, ...groups: string[]) => string);

const RULES: readonly [RegExp, Replacement][] = [
  // Authorization: Basic dXNlcjpwYXNz / Proxy-Authorization: Bearer … / "Authorization": ["Bearer …"]
  [
    /((?:proxy-)?authorization"?\s*[:=]\s*\[?\s*"?)(?:(basic|bearer|token|aws4-hmac-sha256)\s+)?[^\s",\]}]+/gi,
    (_m, head: string, scheme?: string) => `${head}${scheme ? `${scheme} ` : ''}${REDACTED}`,
  ],
  // A scheme and credential on their own, wherever they stand ("…invalid token Bearer eyJ…").
  [/\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  // user:password@ in a URL
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi, `$1${REDACTED}@`],
  // ?token=… &X-Amz-Signature=… (query strings, form bodies)
  [new RegExp(`([?&;](?:${SECRET_NAMES})=)[^&\\s"'#]+`, 'gi'), `$1${REDACTED}`],
  // "token": "…", 'password': '…', Secret: "…" (JSON, YAML-ish, JS object dumps)
  [
    new RegExp(`(["']?(?:${SECRET_NAMES})["']?\\s*:\\s*)(["'])(?:\\\\.|(?!\\2).)*\\2`, 'gi'),
    `$1$2${REDACTED}$2`,
  ],
  // key=value in a log line or a helper's stderr: password=… secret=…
  [new RegExp(`(\\b(?:${SECRET_NAMES})=)[^\\s&"']+`, 'gi'), `$1${REDACTED}`],
  // JSON Web Tokens: registry bearer tokens, OIDC tokens
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
  // AWS secret access keys and session tokens printed bare (40 base64 characters after an access key id)
  [/\b(A(?:KIA|SIA)[A-Z0-9]{16})([^A-Za-z0-9/+]+)[A-Za-z0-9/+]{40}\b/g, `$1$2${REDACTED}`],
];

/** The text with every credential we can recognise replaced by [REDACTED]. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of RULES) out = out.replace(pattern, replacement as string);
  return out;
}

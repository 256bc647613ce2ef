/** One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`. */
export interface Challenge {
  /** Lowercase: `basic`, `bearer`. */
  scheme: string;
  /** Parameter names lowercased (RFC 7235: they are case-insensitive), values unquoted. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[A-Za-z0-9!#$%&'*+.^_`|~-]/;

/**
 * Parses `WWW-Authenticate` (RFC 7235): several challenges may share one header, separated by commas that also
 * separate parameters, so a comma ends a challenge only when what follows is not `name=`. Quoted values may hold
 * commas and escaped quotes. Malformed tails are dropped rather than thrown: the header comes from the network
 * and the caller only needs the challenges it can use.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h));
  return new ChallengeParser(header).parse();
}

class ChallengeParser {
  private pos = 0;

  constructor(private readonly s: string) {}

  parse(): Challenge[] {
    const out: Challenge[] = [];
    for (;;) {
      this.skip(/[\s,]/);
      const scheme = this.token();
      if (!scheme) return out;
      const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
      out.push(challenge);
      this.skip(/\s/);
      this.params(challenge.params);
    }
  }

  /** Reads `name=value` pairs until the next challenge (a token not followed by `=`) or the end. */
  private params(into: Record<string, string>): void {
    for (;;) {
      this.skip(/[\s,]/);
      const start = this.pos;
      const name = this.token();
      if (!name) return;
      this.skip(/\s/);
      if (this.s[this.pos] !== '=') {
        this.pos = start; // a new challenge's scheme
        return;
      }
      this.pos++;
      this.skip(/\s/);
      const value = this.s[this.pos] === '"' ? this.quoted() : this.token68();
      if (value === undefined) {
        this.pos = this.s.length;
        return;
      }
      into[name.toLowerCase()] = value;
    }
  }

  private token(): string {
    const start = this.pos;
    while (this.pos < this.s.length && TOKEN_CHAR.test(this.s[this.pos])) this.pos++;
    return this.s.slice(start, this.pos);
  }

  /** A bare value: token characters plus `/`, `:` and trailing `=`, which real realms and scopes contain unquoted. */
  private token68(): string | undefined {
    const start = this.pos;
    while (this.pos < this.s.length && /[^\s,"]/.test(this.s[this.pos])) this.pos++;
    return this.pos > start ? this.s.slice(start, this.pos) : undefined;
  }

  private quoted(): string | undefined {
    let value = '';
    for (this.pos++; this.pos < this.s.length; this.pos++) {
      const c = this.s[this.pos];
      if (c === '"') {
        this.pos++;
        return value;
      }
      if (c === '\\' && this.pos + 1 < this.s.length) this.pos++;
      value += this.s[this.pos];
    }
    return undefined; // unterminated
  }

  private skip(chars: RegExp): void {
    while (this.pos < this.s.length && chars.test(this.s[this.pos])) this.pos++;
  }
}

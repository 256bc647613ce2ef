import * as http from 'node:http';
import type { Socket } from 'node:net';

/*
 * A faulty network in front of the real registry: a small HTTP proxy on loopback that passes requests to the test
 * bed's docker-registry and, for the requests a rule matches, misbehaves the way real networks and registries do —
 * a connection reset or closed mid-body, a body shorter than promised, a body that stops, a 5xx or 429 storm, bytes
 * flipped on the way, a Range header lost. Every fault is counted, so a test can say what the client lived through.
 *
 * Bounded: a rule applies to `times` requests (1 unless set), a hang or hold lasts at most `maxHoldMs`, and close()
 * ends every connection at once. It listens on 127.0.0.1 only and forwards only to the loopback target it was given.
 */

export type Fault =
  /** After `afterBytes` bytes of the body, a TCP reset (the client reads ECONNRESET). */
  | { kind: 'reset'; afterBytes: number }
  /** After `afterBytes` bytes, a clean close of the connection although Content-Length promised more. */
  | { kind: 'close'; afterBytes: number }
  /** A complete, consistent answer that is too short: Content-Length `bytes`, and that many bytes. */
  | { kind: 'short'; bytes: number }
  /** After `afterBytes` bytes, nothing more: the body stalls until the client gives up (or maxHoldMs). */
  | { kind: 'hang'; afterBytes: number }
  /** No answer at all for `ms` (at most maxHoldMs), then the request goes on: a registry slow to answer. */
  | { kind: 'delay'; ms: number }
  /** Held until `open` settles (at most maxHoldMs), then forwarded: lets a test order two clients' requests. */
  | { kind: 'gate'; open: Promise<unknown> }
  /** Answered by the proxy itself with this status and a spec error body; `retryAfter` in seconds. */
  | { kind: 'status'; status: number; retryAfter?: number }
  /** The byte at `offset` of the body XORed with 0xff: same size, wrong content. */
  | { kind: 'flip'; offset: number }
  /** The Range header is dropped: the registry answers 200 with the whole content, as registries without Range do. */
  | { kind: 'ignore-range' };

export type FaultKind = Fault['kind'];

export interface FaultRule {
  /** Matched against the request's path (without the query). */
  path: RegExp;
  method?: string;
  /** Only requests with (true) or without (false) a Range header. @default either */
  ranged?: boolean;
  fault: Fault;
  /** How many matching requests get the fault; later ones pass through. @default 1 */
  times?: number;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The path with its query (an S3 listing's prefix is in the query). */
  url: string;
  range?: string;
  /** The status the client was sent (0 when the connection was broken before headers). */
  status: number;
  fault?: FaultKind;
}

export interface FaultyProxy {
  /** host:port to use as the registry. */
  address: string;
  /** Every request, in arrival order. */
  requests: ProxiedRequest[];
  /** How many times each fault was applied. */
  counts: Record<FaultKind, number>;
  /** Adds a rule; the first rule that matches a request (and has uses left) applies. */
  inject(rule: FaultRule): void;
  /** Drops the rules and the records. */
  reset(): void;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d+$/;

const KINDS: FaultKind[] = [
  'reset',
  'close',
  'short',
  'hang',
  'delay',
  'gate',
  'status',
  'flip',
  'ignore-range',
];

export async function startFaultyProxy(
  target: string,
  options: { maxHoldMs?: number } = {},
): Promise<FaultyProxy> {
  if (!LOOPBACK.test(target)) throw new Error(`faulty proxy: target ${target} is not a loopback host:port`);
  const maxHoldMs = options.maxHoldMs ?? 30_000;
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const rules: { rule: FaultRule; left: number }[] = [];
  const requests: ProxiedRequest[] = [];
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        fn();
      },
      Math.min(ms, maxHoldMs),
    );
    timers.add(t);
    return t;
  };

  const pick = (req: http.IncomingMessage, path: string): Fault | undefined => {
    for (const r of rules) {
      if (r.left <= 0 || !r.rule.path.test(path)) continue;
      if (r.rule.method && r.rule.method !== req.method) continue;
      if (r.rule.ranged !== undefined && r.rule.ranged !== (req.headers.range !== undefined)) continue;
      r.left--;
      return r.rule.fault;
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://proxy').pathname;
    const record: ProxiedRequest = { method: req.method ?? '', path, url: req.url ?? '/', status: 0 };
    if (req.headers.range) record.range = String(req.headers.range);
    requests.push(record);
    const fault = pick(req, path);
    if (fault) {
      record.fault = fault.kind;
      counts[fault.kind]++;
    }
    // On close, not finish: a body broken off never finishes, but its status line was sent.
    res.on('close', () => (record.status = res.headersSent ? res.statusCode : 0));

    if (fault?.kind === 'status') {
      const body = JSON.stringify({
        errors: [
          { code: fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'injected fault' },
        ],
      });
      // Answered once the request body is read: answering an upload mid-body closes the connection under the
      // client, which then sees a premature close instead of the status (a race, not the fault asked for).
      req.resume();
      req.once('end', () => {
        res.writeHead(fault.status, {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          ...(fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {}),
        });
        res.end(body);
      });
      return;
    }
    const forward = () => {
      if (closed) return;
      const headers = { ...req.headers };
      if (fault?.kind === 'ignore-range') delete headers.range;
      const upstream = http.request({ host, port, method: req.method, path: req.url, headers }, (up) =>
        relay(up, res, req.method === 'GET' ? fault : undefined),
      );
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      req.pipe(upstream);
    };
    if (fault?.kind === 'delay') later(fault.ms, forward);
    else if (fault?.kind === 'gate') {
      const t = later(maxHoldMs, forward);
      void Promise.resolve(fault.open)
        .catch(() => undefined)
        .then(() => {
          if (!timers.has(t)) return; // already forwarded at maxHoldMs
          clearTimeout(t);
          timers.delete(t);
          forward();
        });
    } else forward();
  });

  /** Passes the registry's answer on, breaking its body as `fault` says. */
  function relay(up: http.IncomingMessage, res: http.ServerResponse, fault: Fault | undefined): void {
    const headers = { ...up.headers };
    const declared = Number(up.headers['content-length'] ?? NaN);
    if (fault?.kind === 'short' && Number.isFinite(declared))
      headers['content-length'] = String(Math.min(fault.bytes, declared));
    res.writeHead(up.statusCode ?? 502, headers);
    const limit =
      fault?.kind === 'reset' || fault?.kind === 'close' || fault?.kind === 'hang'
        ? fault.afterBytes
        : fault?.kind === 'short'
          ? fault.bytes
          : Infinity;
    let sent = 0;
    let stopped = false;
    const stop = (head: Buffer) => {
      stopped = true;
      up.destroy();
      res.write(head, () => {
        const socket = res.socket;
        if (fault?.kind === 'short') res.end();
        // A moment for the bytes to reach the client first, so it sees a body broken off, not a refused request.
        else if (fault?.kind === 'reset') later(20, () => socket?.resetAndDestroy());
        else if (fault?.kind === 'close') later(20, () => socket?.end());
        else if (fault?.kind === 'hang') later(maxHoldMs, () => socket?.destroy());
      });
    };
    if (limit <= 0) {
      stop(Buffer.alloc(0));
      return;
    }
    up.on('data', (chunk: Buffer) => {
      if (stopped) return;
      if (fault?.kind === 'flip' && fault.offset >= sent && fault.offset < sent + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[fault.offset - sent] ^= 0xff;
      }
      if (sent + chunk.length >= limit) {
        const head = chunk.subarray(0, limit - sent);
        sent = limit;
        stop(head);
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) {
        up.pause();
        res.once('drain', () => up.resume());
      }
    });
    up.on('end', () => !stopped && res.end());
    up.on('error', () => res.destroy());
  }

  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;

  return {
    address,
    requests,
    counts,
    inject: (rule) => rules.push({ rule, left: rule.times ?? 1 }),
    reset: () => {
      rules.splice(0);
      requests.splice(0);
      for (const k of KINDS) counts[k] = 0;
    },
    close: () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

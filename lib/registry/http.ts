import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Agent as AgentType, Dispatcher } from 'undici';

/*
 * The two pieces of undici the registry client uses for uploads — Agent (connection pools per origin) and request() —
 * taken from undici's own files instead of its index. The index also loads fetch, WebSocket, cookies, caches, proxies
 * and mocks, which the CLI never uses: on Node 20 that was about 40 ms of every command's start (--cpu-prof). undici
 * has no `exports` map, so these paths are public files of the pinned version; a unit test checks that they are the
 * very functions undici's index exports, so an upgrade that moves them fails the tests, not a user.
 *
 * Both are loaded on first use: a command that uploads nothing (a snapshot, a listing) does not evaluate undici (and
 * node:http2, which it loads) at all — about 10 ms of a snapshot's start (--cpu-prof).
 */

/** undici's Agent class. */
export function undiciAgent(): typeof AgentType {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('undici/lib/dispatcher/agent') as typeof AgentType;
}

type Dispatch = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
let dispatch: Dispatch | undefined;

/**
 * One HTTP exchange: on an HttpClient (what the registry transport uses: GETs on Node's http, uploads on undici), or
 * on an undici dispatcher as undici's `request(url, options)` does (the same origin/path split its index does). Every
 * registry request of the transport passes here, so a test can watch them all at one place.
 */
export function request(
  url: URL,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher | HttpClient },
): Promise<HttpResponse> {
  const { dispatcher, ...rest } = options;
  if (dispatcher instanceof HttpClient) {
    return dispatcher.request(url, {
      method: rest.method,
      headers: (rest.headers ?? {}) as Record<string, string>,
      body: (rest.body ?? null) as RequestBody | null,
    });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  dispatch ??= require('undici/lib/api/api-request') as Dispatch;
  return dispatch.call(dispatcher, {
    ...rest,
    origin: url.origin,
    path: url.search ? `${url.pathname}${url.search}` : url.pathname,
  });
}

/** What a registry exchange gives back, whichever HTTP stack carried it. */
export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

export interface HttpClientOptions {
  /** Verify the server's TLS certificate. */
  readonly rejectUnauthorized: boolean;
  /** How long a request may wait for its response headers (or, for an upload, to take more of its body). */
  readonly headersTimeoutMs: number;
  /** The longest pause inside a response body while we are reading it. */
  readonly bodyTimeoutMs: number;
}

/** A response that did not come, or a body that stopped, within its timeout: retryable, like a reset. */
export class HttpTimeoutError extends Error {
  constructor(
    readonly code: 'IMAGEVAULT_HEADERS_TIMEOUT' | 'IMAGEVAULT_BODY_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'HttpTimeoutError';
  }
}

/**
 * The registry client's HTTP: GET and HEAD (manifests, blobs: every byte a snapshot moves) on Node's own http/https,
 * requests with a body (uploads) on undici.
 *
 * Why two: measured on a 64 MiB blob from the local registry (GET → sha256 → file, whole process, side by side), Node's
 * http took about half the CPU of undici's request and 0.6× its wall time: its parser is native and hands the body on
 * as slices of the socket's reads, while undici parses in WebAssembly and copies every read into and out of it.
 * Uploads stay on undici, whose request-body handling (Content-Length checked against what was sent, a stalled
 * upload timed out) the push path and its tests rely on.
 *
 * The timeouts mean what undici's meant: `headersTimeoutMs` until the response headers, `bodyTimeoutMs` the longest
 * pause inside a body — and time our side spends not reading (the consumer applied backpressure, the socket is
 * paused) does not count.
 */
export class HttpClient {
  private undici?: AgentType;
  private readonly plain: HttpAgent;
  private tls?: HttpAgent;

  constructor(private readonly options: HttpClientOptions) {
    this.plain = new (nodeHttp().Agent)({ keepAlive: true });
  }

  request(
    url: URL,
    options: { method: string; headers: Record<string, string>; body: RequestBody | null },
  ): Promise<HttpResponse> {
    if (options.body === null && (options.method === 'GET' || options.method === 'HEAD')) {
      return this.get(url, options.method, options.headers);
    }
    return request(url, {
      method: options.method as Dispatcher.HttpMethod,
      headers: options.headers,
      body: options.body,
      dispatcher: (this.undici ??= new (undiciAgent())({
        connect: { rejectUnauthorized: this.options.rejectUnauthorized },
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
      })),
    });
  }

  async close(): Promise<void> {
    this.plain.destroy();
    this.tls?.destroy();
    await this.undici?.close();
  }

  private get(url: URL, method: string, headers: Record<string, string>): Promise<HttpResponse> {
    const https = url.protocol === 'https:';
    const lib = https ? nodeHttps() : nodeHttp();
    const agent = https
      ? (this.tls ??= new (nodeHttps().Agent)({
          keepAlive: true,
          rejectUnauthorized: this.options.rejectUnauthorized,
        }))
      : this.plain;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = lib.request(url, { method, headers, agent });
      const headersTimer = setTimeout(() => {
        req.destroy(
          new HttpTimeoutError(
            'IMAGEVAULT_HEADERS_TIMEOUT',
            `Headers Timeout: no response within ${this.options.headersTimeoutMs} ms`,
          ),
        );
      }, this.options.headersTimeoutMs);
      req.once('error', (e) => {
        clearTimeout(headersTimer);
        reject(e);
      });
      req.once('response', (res) => {
        clearTimeout(headersTimer);
        this.watchBody(res);
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      req.end();
    });
  }

  /** Fails a body that pauses longer than the body timeout while we read; our own pauses do not count. */
  private watchBody(res: IncomingMessage): void {
    const socket = res.socket;
    if (!socket || res.complete) return;
    const ms = this.options.bodyTimeoutMs;
    const timer = setTimeout(() => {
      // Paused by backpressure (our consumer is behind): the registry is not at fault.
      if (socket.isPaused()) timer.refresh();
      else
        res.destroy(
          new HttpTimeoutError('IMAGEVAULT_BODY_TIMEOUT', `Body Timeout: no data for ${ms} ms mid-body`),
        );
    }, ms);
    const touch = () => timer.refresh();
    socket.on('data', touch);
    res.once('close', () => {
      clearTimeout(timer);
      socket.off('data', touch);
    });
  }
}

/**
 * Byte bodies are resent on a retry or after an auth challenge. A Readable is sent exactly once: it cannot be
 * rewound, so a request with one is never retried by the transport; the caller decides whether it can produce the
 * stream again.
 */
export type RequestBody = Uint8Array | string | Readable;

// Loaded on first use: a command that talks to no registry (or only over https) does not pay for both.
function nodeHttp(): typeof import('node:http') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:http') as typeof import('node:http');
}
function nodeHttps(): typeof import('node:https') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:https') as typeof import('node:https');
}

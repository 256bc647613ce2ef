import type { Agent as AgentType, Dispatcher } from 'undici';

/*
 * The two pieces of undici the registry client uses — Agent (connection pools per origin) and request() — taken
 * from undici's own files instead of its index. The index also loads fetch, WebSocket, cookies, caches, proxies and
 * mocks, which the CLI never uses: on Node 20 that was about 40 ms of every command's start (--cpu-prof). undici has
 * no `exports` map, so these paths are public files of the pinned version; a unit test checks that they are the very
 * functions undici's index exports, so an upgrade that moves them fails the tests, not a user.
 *
 * Both are loaded on first use: `list`, `history`, `verify` and the like talk to no registry and do not evaluate undici
 * (nor node:http2, which it loads): about 10 ms of their start (--cpu-prof).
 */

/** undici's Agent class, loaded on first use: a command that talks to no registry does not evaluate undici. */
export function undiciAgent(): typeof AgentType {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('undici/lib/dispatcher/agent') as typeof AgentType;
}

type Dispatch = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
let dispatch: Dispatch | undefined;

/** undici's `request(url, options)`: the same origin/path split its index does, on the given dispatcher. */
export function request(
  url: URL,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  dispatch ??= require('undici/lib/api/api-request') as Dispatch;
  const { dispatcher, ...rest } = options;
  return dispatch.call(dispatcher, {
    ...rest,
    origin: url.origin,
    path: url.search ? `${url.pathname}${url.search}` : url.pathname,
  });
}

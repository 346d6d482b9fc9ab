// The admin API under /admin/ on the proxy port, JSON in and out: cache totals, the image
// listing, purges and an eviction pass on demand. It only speaks HTTP: what the answers mean is
// cache/control.ts. Off (404 for every /admin/ path) unless admin.token is set; otherwise every
// request needs the token (401 with a Bearer challenge). Errors are `{"error": "…"}`.
// In a cluster, the cache-wide paths (CLUSTER_WIDE) of a replica that does not keep the books are
// answered by the one that does (`forward`); the rest are this replica's own (stats, warm, watch).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Selector } from '../cache/catalog.ts';
import type { CacheControl } from '../cache/control.ts';
import type { PurgeResult } from '../cache/purge.ts';
import { AdminToken } from './auth.ts';

export interface AdminOptions {
  /** null: the API is off. */
  readonly token: string | null;
  /** undefined: the cache keeps no index (read-only), so there is nothing to list or purge. */
  /** The cache's control, once its index is open (undefined: read-only, or it failed). */
  readonly control: () => Promise<CacheControl | undefined>;
  /** The watched tags and their states (`/admin/watch`); undefined: watching is off. */
  readonly watch?: (() => unknown) | undefined;
  /** A request that failed inside the cache (answered 500). */
  readonly onError?: (error: unknown) => void;
  /** A purge or pass that changed the cache, with what it did: one log line for the operator. */
  readonly onChange?: (event: string, fields: Record<string, unknown>) => void;
  /** The dashboard's live numbers (GET /admin/stats?since=ms); unset: 404. */
  readonly stats?: (since: number) => Promise<unknown>;
  /** Warming images through the proxy (POST /admin/warm?ref=, GET /admin/warm); unset: 404. */
  readonly warm?: {
    start(ref: string, platform: string | undefined): { readonly job: unknown } | { readonly error: string };
    jobs(): unknown[];
  };
  /**
   * In a cluster: answers a CLUSTER_WIDE request, once authenticated here, with the bookkeeper's
   * answer while this replica keeps no index. `send` rejects before answering when no bookkeeper
   * can (its message says why: answered 503 with Retry-After `retryAfterSeconds`).
   */
  readonly forward?: {
    send(req: IncomingMessage, res: ServerResponse): Promise<void>;
    readonly retryAfterSeconds: number;
  };
}

export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The paths whose answer is the cluster's (the index: listing, totals, purges, pins, eviction),
 * answered by the bookkeeper; the others describe or drive this replica (its stats and metrics,
 * its warm jobs, the tags its own clients pull in /admin/watch) and are answered where asked.
 */
export const CLUSTER_WIDE: ReadonlySet<string> = new Set([
  '/admin/cache',
  '/admin/images',
  '/admin/pins',
  '/admin/evict',
]);

/** What `answer` resolves with once the response was sent by someone else (the bookkeeper's). */
const SENT = Symbol('sent');

/** A refusal with its status, thrown by the routes and answered as JSON. */
class AdminError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export function createAdminHandler(options: AdminOptions): AdminHandler {
  const token = options.token === null ? undefined : new AdminToken(options.token);
  return serve(options, (req) => {
    if (!token) throw new AdminError(404, 'not found');
    if (!token.allows(req.headers.authorization)) {
      throw new AdminError(401, 'a valid admin token is needed', {
        'www-authenticate': 'Bearer realm="pullthrough admin"',
      });
    }
  });
}

/**
 * The bookkeeper's side of `forward`: a request another replica has authenticated (the internal
 * endpoint checked the cluster secret), answered here and never sent on again.
 */
export function createForwardedAdminHandler(options: AdminOptions): AdminHandler {
  const { forward: _, ...local } = options;
  const noIndex = 'this replica no longer keeps the cache books (another takes them over): retry';
  return serve({ ...local, noIndex }, () => undefined);
}

/** The one place where an admin answer or error becomes a response. */
function serve(options: AdminOptions & { noIndex?: string }, check: (req: IncomingMessage) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    req.resume(); // no endpoint reads a body; drain whatever came
    const answer = async (): Promise<unknown> => {
      check(req);
      const { pathname } = new URL(req.url ?? '/', 'http://admin');
      const { forward } = options;
      if (!forward || !CLUSTER_WIDE.has(pathname) || (await options.control())) return route(req, options);
      try {
        await forward.send(req, res);
        return SENT;
      } catch (error) {
        // Once the bookkeeper's headers are out, an error can only cut the response.
        if (res.headersSent) {
          res.destroy(error as Error);
          return SENT;
        }
        const retryAfter = String(forward.retryAfterSeconds);
        throw new AdminError(503, (error as Error).message, { 'retry-after': retryAfter });
      }
    };
    answer().then(
      (body) => {
        if (body !== SENT) sendJson(res, 200, body);
      },
      (error: unknown) => {
        if (error instanceof AdminError)
          return sendJson(res, error.status, { error: error.message }, error.headers);
        options.onError?.(error);
        sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
      },
    );
  };
}

async function route(req: IncomingMessage, options: AdminOptions & { noIndex?: string }): Promise<unknown> {
  const { control, onChange } = options;
  const url = new URL(req.url ?? '/', 'http://admin');
  const method = req.method ?? 'GET';
  const allow = (methods: string) => {
    if (!methods.split(', ').includes(method)) {
      throw new AdminError(405, `${method} is not allowed here`, { allow: methods });
    }
  };
  const cache = async () => {
    const current = await control();
    if (current) return current;
    if (options.noIndex) throw new AdminError(503, options.noIndex, { 'retry-after': '1' });
    throw new AdminError(503, 'the cache keeps no index (read-only or failed): nothing to manage');
  };
  switch (url.pathname) {
    case '/admin/cache':
      allow('GET, DELETE');
      if (method === 'GET') return (await cache()).summary();
      return reported(onChange, 'admin purge', {}, await (await cache()).purge({}));
    case '/admin/images': {
      allow('GET, DELETE');
      const selector = selectorOf(url.searchParams);
      if (method === 'GET') return { registries: await (await cache()).images(selector) };
      if (selector.registry === undefined) {
        throw new AdminError(400, 'registry= is required (DELETE /admin/cache purges everything)');
      }
      return reported(onChange, 'admin purge', { ...selector }, await (await cache()).purge(selector));
    }
    case '/admin/pins': {
      allow('GET, POST, DELETE');
      const control = await cache();
      if (method === 'GET') return control.pins();
      const pattern = url.searchParams.get('ref')?.trim() ?? '';
      if (!control.isPin(pattern)) {
        throw new AdminError(400, 'ref= must be a pin: e.g. docker.io/library/postgres:16, ghcr.io/org/*');
      }
      const result = method === 'POST' ? control.pin(pattern) : control.unpin(pattern);
      onChange?.(method === 'POST' ? 'admin pin' : 'admin unpin', { ref: pattern });
      return result;
    }
    case '/admin/watch':
      allow('GET');
      if (!options.watch) throw new AdminError(404, 'watching is off (watch.interval: 0)');
      return options.watch();
    case '/admin/evict': {
      allow('POST');
      const pass = await (await cache()).evict();
      const { freedBytes, usage } = pass;
      onChange?.('admin eviction pass', { images: pass.evicted.length, freedBytes, usageAfter: usage.after });
      return pass;
    }
    case '/admin/stats': {
      allow('GET');
      if (!options.stats) throw new AdminError(404, 'not found');
      const since = Number(url.searchParams.get('since') ?? 0);
      return options.stats(Number.isFinite(since) ? since : 0);
    }
    case '/admin/warm': {
      allow('GET, POST');
      if (!options.warm) throw new AdminError(404, 'not found');
      if (method === 'GET') return { jobs: options.warm.jobs() };
      const ref = url.searchParams.get('ref')?.trim() ?? '';
      const started = options.warm.start(ref, url.searchParams.get('platform') ?? undefined);
      if ('error' in started) throw new AdminError(400, started.error);
      onChange?.('admin warm', { ref });
      return started.job;
    }
    default:
      throw new AdminError(404, 'not found');
  }
}

function reported<T extends PurgeResult>(
  onChange: AdminOptions['onChange'],
  event: string,
  selector: Record<string, unknown>,
  result: T,
): T {
  const { tags, images, files, bytes, inUse } = result;
  onChange?.(event, { ...selector, tags, images, files, bytes, inUse: inUse.length });
  return result;
}

function selectorOf(params: URLSearchParams): Selector {
  const value = (name: string) => {
    const found = params.get(name);
    return found === null || found === '' ? undefined : found;
  };
  const selector = { registry: value('registry'), repository: value('repository'), tag: value('tag') };
  if (selector.tag !== undefined && selector.repository === undefined) {
    throw new AdminError(400, 'tag= needs repository=');
  }
  if (selector.repository !== undefined && selector.registry === undefined) {
    throw new AdminError(400, 'repository= needs registry=');
  }
  return selector;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

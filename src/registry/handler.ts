// The registry handler: every decrypted request to an intercepted host comes here. It routes
// by the /v2/ grammar, applies policy (pushes, no-cache), hands the request to blobs, manifests
// or the passthrough, and is the single error boundary: failures become OCI error bodies
// (errors.ts), and one completion log line per request is written when its response is closed
// (and handed to `onCompletion`, which feeds the metrics).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { redactUrl } from '../log.ts';
import { serveBlob } from './blobs.ts';
import type { Exchange, Mode, RegistryDeps } from './context.ts';
import { Challenges } from './challenges.ts';
import { registryErrors, sendError, toRegistryError, withHeaders, type RegistryError } from './errors.ts';
import { serveManifest } from './manifests/serve.ts';
import { newOutcome } from './outcome.ts';
import { servePassthrough } from './passthrough.ts';
import { serveReferrers } from './referrers.ts';
import { isWrite, parseRoute, type Route } from './routes.ts';

export function createRegistryHandler(given: RegistryDeps) {
  const deps: RegistryDeps = { ...given, challenges: new Challenges(given.intercepts ?? (() => false)) };
  return async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    destination: Destination,
    /** How the request reached us: through HTTPS_PROXY, or at the mirror listener. */
    mode: Mode = 'proxy',
  ): Promise<void> {
    const started = performance.now();
    const route = parseRoute(req.url ?? '/');
    const host = formatAuthority(destination);
    const x: Exchange = { req, res, destination, host, mode, outcome: newOutcome() };
    let failure: RegistryError | undefined;
    // Written once the response is over (sent, or cut), so `aborted` and `bytes` are true.
    res.once('close', () => {
      rememberChallenge(x, deps);
      logCompletion(x, route, deps, started, failure);
    });
    try {
      await dispatch(x, route, deps);
    } catch (error) {
      if (clientWentAway(res, error)) return;
      failure = withChallenge(x, route, deps, toRegistryError(error));
      sendError(res, failure, req.method);
    }
  };
}

/** Paths the proxy answers itself, before anything is looked up or sent upstream. */
const INVALID = {
  name: registryErrors.nameInvalid,
  digest: registryErrors.digestInvalid,
  tag: registryErrors.tagInvalid,
} as const;

async function dispatch(x: Exchange, route: Route, deps: RegistryDeps): Promise<void> {
  const { req } = x;
  // A path, or an http(s) URL as plain-HTTP proxy requests send it (RFC 9112 §3.2): `*`, an
  // authority or junk names no registry endpoint and cannot be relayed. A 404, not a 502.
  if (!/^(?:\/|https?:\/\/)/.test(req.url ?? '/')) throw registryErrors.notFound(req.url ?? '');
  if (route.kind === 'invalid') throw INVALID[route.what](route.value);
  const refusal = 'name' in route ? deps.repositoryRefusal?.(x.destination, route.name) : undefined;
  if (refusal !== undefined && 'name' in route) throw registryErrors.repositoryRefused(refusal, route.name);
  if (!deps.allowPush && isWrite(req.method) && route.kind !== 'other') {
    throw registryErrors.unsupported(
      `${req.method} method is not allowed: pushes are disabled (allowPush: false)`,
    );
  }
  const reading = req.method === 'GET' || req.method === 'HEAD';
  // A request this proxy sent to a mirror that led back here is relayed (upstream/mirrors.ts).
  const cacheable = deps.policy(x.destination) !== 'no-cache' && !deps.mirrors?.looped(req.headers.via);
  if (cacheable && reading && route.kind === 'blob') return serveBlob(x, route, deps);
  if (cacheable && reading && route.kind === 'manifest') return serveManifest(x, route, deps);
  if (cacheable && req.method === 'GET' && route.kind === 'referrers') return serveReferrers(x, route, deps);
  return servePassthrough(x, route, deps);
}

/** An upstream 401 tells how clients authenticate here: kept for when upstream is gone (challenges.ts). */
function rememberChallenge(x: Exchange, deps: RegistryDeps): void {
  const challenge = x.res.getHeader('www-authenticate');
  if (x.res.statusCode === 401 && typeof challenge === 'string') deps.challenges?.remember(x.host, challenge);
}

/**
 * A 401 the proxy makes itself (upstream unreachable, no earlier answer for this client) asks
 * for credentials as upstream would, so that a client with some fetches a token and comes back.
 * Not in mirror mode: mirror clients reach token realms directly, and offline cannot.
 */
function withChallenge(x: Exchange, route: Route, deps: RegistryDeps, failure: RegistryError): RegistryError {
  if (failure.status !== 401 || x.mode !== 'proxy' || 'www-authenticate' in failure.headers) return failure;
  const challenge = 'name' in route ? deps.challenges?.forRepository(x.host, route.name) : undefined;
  return challenge === undefined ? failure : withHeaders(failure, { 'www-authenticate': challenge });
}

function logCompletion(
  x: Exchange,
  route: Route,
  deps: RegistryDeps,
  started: number,
  failure: RegistryError | undefined,
): void {
  const { req, res, outcome } = x;
  const ms = performance.now() - started;
  deps.onCompletion?.({
    host: x.host,
    mode: x.mode,
    kind: route.kind === 'manifest' || route.kind === 'blob' ? route.kind : 'other',
    cache: outcome.cache,
    status: res.statusCode,
    bytes: outcome.bytes,
    ms,
    shared: outcome.shared,
  });
  deps.log.info(
    {
      host: x.host,
      ...(x.mode === 'mirror' ? { mode: x.mode } : {}),
      method: req.method,
      path: redactUrl(req.url ?? '/'),
      route: route.kind,
      ...('name' in route ? { repo: route.name } : {}),
      status: res.statusCode,
      bytes: outcome.bytes,
      ms: Math.round(ms),
      cache: outcome.cache,
      ...(outcome.shared ? { shared: true } : {}),
      ...(outcome.source === undefined ? {} : { source: outcome.source }),
      ...(res.writableFinished ? {} : { aborted: true }),
      ...(failure ? { err: failure.message, code: failure.code, cause: errorText(failure.cause) } : {}),
    },
    'request',
  );
}

/** The client closed its connection first: nothing to answer and nothing to report as an error. */
function clientWentAway(res: ServerResponse, error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (
    res.destroyed &&
    (code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error | undefined)?.name === 'AbortError')
  );
}

function errorText(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  return cause instanceof Error ? cause.message : JSON.stringify(cause);
}

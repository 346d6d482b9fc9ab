// Everything under an intercepted host that is not a cached blob, manifest or referrers index:
// the /v2/ ping, token endpoints, tag lists, catalog, uploads. Relayed unmodified, never cached,
// with two exceptions when the upstream cannot be reached at all: the ping and token requests
// that every pull starts with are answered here (the ping with upstream's own challenge when one
// is remembered, challenges.ts; tokens.ts: a placeholder token), so clients go on to ask for
// what the cache may serve without upstream (public content, grants).
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import type { Exchange, RegistryDeps } from './context.ts';
import { registryErrors, sendError } from './errors.ts';
import { sendOffline } from './respond/offline.ts';
import { relay } from './respond/relay.ts';
import type { Route } from './routes.ts';
import { isTokenRequest, serveToken } from './tokens.ts';

export async function servePassthrough(x: Exchange, route: Route, deps: RegistryDeps): Promise<void> {
  const { req, res } = x;
  if (route.kind === 'other' && isTokenRequest(req)) return serveToken(x, deps);
  try {
    const status = await relay(req, res, x.destination, deps.upstream, x.outcome);
    // Upstream accepted this credential for this repository: remember it (access/access.ts).
    if ('name' in route && status >= 200 && status < 300) {
      deps.access.grant(x.host, route.name, req.headers.authorization);
    }
  } catch (error) {
    // An unverifiable certificate is a misconfiguration or an attack, not an outage: say so.
    const unreachable = error instanceof UpstreamUnavailableError && !error.tls;
    if (!unreachable || res.headersSent || route.kind !== 'ping') throw error;
    deps.log.warn(
      { host: x.host, path: route.kind, reason: error.reason },
      'upstream unreachable: answering offline',
    );
    // Asked to authenticate as upstream asked before, a client with credentials fetches a token
    // (tokens.ts) that keeps its grants; told nothing, it would go on anonymously.
    const challenge = x.mode === 'proxy' ? deps.challenges?.forPing(x.host) : undefined;
    if (challenge === undefined) return sendOffline(x, '{}');
    res.setHeader('x-cache', 'STALE');
    x.outcome.cache = 'stale';
    sendError(res, registryErrors.offlineChallenge(challenge), req.method);
  }
}

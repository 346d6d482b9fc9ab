// Everything under an intercepted host that is not a cached blob, manifest or referrers index:
// the /v2/ ping, token endpoints, tag lists, catalog, uploads. Relayed unmodified, never cached,
// with two exceptions when the upstream cannot be reached at all: the ping and token requests
// that every pull starts with are answered here (a placeholder token that grants nothing), so
// clients go on to ask for what the cache may serve without upstream (public content, grants).
import type { IncomingMessage } from 'node:http';
import { originOf } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import { readCapped } from '../upstream/body.ts';
import { MAX_TOKEN_RESPONSE, parseTokenResponse } from '../upstream/token-response.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import type { Exchange, RegistryDeps } from './context.ts';
import { registryErrors } from './errors.ts';
import { hasBody, relay, sendBuffer } from './respond/relay.ts';
import type { Route } from './routes.ts';

const OFFLINE_TOKEN = 'pullthrough-offline';

export async function servePassthrough(x: Exchange, route: Route, deps: RegistryDeps): Promise<void> {
  const { req, res } = x;
  const token = route.kind === 'other' && isTokenRequest(req);
  try {
    if (token) return await relayToken(x, deps);
    const status = await relay(req, res, x.destination, deps.upstream, x.outcome);
    // Upstream accepted this credential for this repository: remember it (access/access.ts).
    if ('name' in route && status >= 200 && status < 300) {
      deps.access.grant(x.host, route.name, req.headers.authorization);
    }
  } catch (error) {
    // An unverifiable certificate is a misconfiguration or an attack, not an outage: say so.
    const unreachable = error instanceof UpstreamUnavailableError && !error.tls;
    if (!unreachable || res.headersSent || !(route.kind === 'ping' || token)) throw error;
    deps.log.warn(
      { host: x.host, path: route.kind, reason: error.reason },
      'upstream unreachable: answering offline',
    );
    const body = route.kind === 'ping' ? '{}' : offlineToken();
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'docker-distribution-api-version': 'registry/2.0',
      'x-cache': 'STALE',
    });
    x.outcome.cache = 'stale';
    sendBuffer(req, res, body, x.outcome);
  }
}

/**
 * Token requests by their shape (distribution token auth: a `service` or `scope` query, or a
 * POST of the OAuth2 form to a token path): realms live on the registry host (ghcr.io/token,
 * quay.io/v2/auth) or on another intercepted host (auth.docker.io/token).
 */
export function isTokenRequest(req: IncomingMessage): boolean {
  // An origin-form target is a path of this origin, not a relative reference (in which
  // `//host/...` would be an authority); an absolute-form one (plain-HTTP proxying) has its own.
  const target = req.url ?? '/';
  const url = URL.parse(target.startsWith('/') ? `https://x${target}` : target);
  if (url === null) return false;
  if (req.method === 'GET' && (url.searchParams.has('service') || url.searchParams.has('scope'))) return true;
  return (
    (req.method === 'GET' || req.method === 'POST') &&
    /\/(token|auth|oauth2\/token|jwt\/auth)$/.test(url.pathname)
  );
}

/** Relays a token request; a token handed to an anonymous GET is remembered as anonymous. */
async function relayToken(x: Exchange, deps: RegistryDeps): Promise<void> {
  const { req, res } = x;
  const response = await deps.upstream.request({
    origin: originOf(x.destination),
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: withoutHopByHop(req.headers),
    body: hasBody(req) ? req : null,
  });
  const body = await readCapped(response, MAX_TOKEN_RESPONSE);
  if (body === undefined) throw registryErrors.tokenTooLarge();
  // Only a GET with no Authorization is anonymous: `docker login` POSTs credentials in its body.
  if (response.statusCode === 200 && req.method === 'GET' && !req.headers.authorization) {
    for (const token of parseTokenResponse(body)?.tokens ?? []) deps.access.markAnonymous(`Bearer ${token}`);
  }
  res.writeHead(response.statusCode, withoutHopByHop(response.headers));
  sendBuffer(req, res, body, x.outcome);
}

function offlineToken(): string {
  return JSON.stringify({
    token: OFFLINE_TOKEN,
    access_token: OFFLINE_TOKEN,
    expires_in: 60,
    issued_at: new Date().toISOString(),
  });
}

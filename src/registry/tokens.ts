// Token requests (distribution token auth) to an intercepted host: relayed, and what their
// answers say about who a client is remembered (access/access.ts): a token handed to an
// anonymous GET proves nothing; a token handed to a credential is that credential's. While the
// token server cannot be reached the proxy answers itself with a placeholder token: one that
// grants nothing, or, for a credential, one that carries it on to the grants it earned within
// access.offlineGrace, so that a client whose token expired during an outage still pulls.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { originOf } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import { readCapped } from '../upstream/body.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { MAX_TOKEN_RESPONSE, parseTokenResponse } from '../upstream/token-response.ts';
import type { Exchange, RegistryDeps } from './context.ts';
import { registryErrors } from './errors.ts';
import { sendOffline } from './respond/offline.ts';
import { hasBody, sendBuffer } from './respond/relay.ts';

const OFFLINE_TOKEN = 'pullthrough-offline';
/** An OAuth2 token form is a few hundred bytes; this is plenty and bounds what is buffered. */
const MAX_TOKEN_REQUEST = 64 * 1024;

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

/** Relays a token request (its small body buffered), remembering whose the tokens are. */
export async function serveToken(x: Exchange, deps: RegistryDeps): Promise<void> {
  const { req, res } = x;
  const body = hasBody(req) ? await readRequest(req) : null;
  if (body === undefined) throw registryErrors.tokenRequestTooLarge(MAX_TOKEN_REQUEST);
  const credential = credentialOf(req, body);
  let response;
  try {
    response = await deps.upstream.request({
      origin: originOf(x.destination),
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: withoutHopByHop(req.headers),
      body: body === null ? null : Readable.from([body]),
    });
  } catch (error) {
    // An unverifiable certificate is a misconfiguration or an attack, not an outage: say so.
    if (!(error instanceof UpstreamUnavailableError) || error.tls) throw error;
    deps.log.warn(
      { host: x.host, path: 'token', reason: error.reason },
      'upstream unreachable: answering offline',
    );
    return sendOffline(x, offlineToken(deps, credential));
  }
  const answer = await readCapped(response, MAX_TOKEN_RESPONSE);
  if (answer === undefined) throw registryErrors.tokenTooLarge();
  if (response.statusCode === 200) {
    const tokens = parseTokenResponse(answer)?.tokens ?? [];
    for (const token of tokens) {
      // Only a GET with no Authorization is anonymous: `docker login` POSTs credentials in its body.
      if (req.method === 'GET' && !req.headers.authorization) deps.access.markAnonymous(`Bearer ${token}`);
      else if (credential !== undefined) deps.access.ownToken(`Bearer ${token}`, credential);
    }
  }
  res.writeHead(response.statusCode, withoutHopByHop(response.headers));
  sendBuffer(req, res, answer, x.outcome);
}

/**
 * What the client proves to the token server, as text to hash: its Authorization header (Basic,
 * as docker and podman send it), else the OAuth2 form's password or refresh token (containerd).
 */
function credentialOf(req: IncomingMessage, body: Buffer | null): string | undefined {
  const authorization = req.headers.authorization;
  if (authorization) return `header\0${authorization}`;
  if (req.method !== 'POST' || body === null) return undefined;
  const form = new URLSearchParams(body.toString('utf8'));
  const grant = form.get('grant_type');
  if (grant === 'password' && form.get('password')) {
    return `password\0${form.get('username') ?? ''}\0${form.get('password') ?? ''}`;
  }
  if (grant === 'refresh_token' && form.get('refresh_token'))
    return `refresh\0${form.get('refresh_token') ?? ''}`;
  return undefined;
}

/** The placeholder: shared and worthless for anonymous clients, the credential's own otherwise. */
function offlineToken(deps: RegistryDeps, credential: string | undefined): string {
  let token = OFFLINE_TOKEN;
  if (credential !== undefined) {
    token = `${OFFLINE_TOKEN}.${randomBytes(18).toString('base64url')}`;
    deps.access.ownToken(`Bearer ${token}`, credential);
  }
  return JSON.stringify({
    token,
    access_token: token,
    expires_in: 60,
    issued_at: new Date().toISOString(),
  });
}

async function readRequest(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_TOKEN_REQUEST) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

// The body of a distribution token server's answer: `{token}` and/or `{access_token}` (OAuth2),
// with `expires_in` seconds (60 when absent, per the token spec). Read both by the relay (to
// remember tokens handed to anonymous requests) and by the login of `share` registries; and
// the one request for a token both logins make (requestToken).

import { readCapped } from './body.ts';
import type { UpstreamRequest, UpstreamResponse } from './types.ts';

/** A token response is small JSON; a bigger body is not one. */
export const MAX_TOKEN_RESPONSE = 1024 * 1024;

const DEFAULT_EXPIRES_IN = 60;

export interface TokenResponse {
  /** The distinct non-empty tokens it carries (`token` first). */
  readonly tokens: string[];
  readonly expiresIn: number;
}

/** The tokens of a token server's JSON answer; undefined when it is not JSON. */
export function parseTokenResponse(body: Buffer): TokenResponse | undefined {
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const tokens = [parsed.token, parsed.access_token].filter(
    (t): t is string => typeof t === 'string' && t !== '',
  );
  const expiresIn =
    typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_EXPIRES_IN;
  return { tokens: [...new Set(tokens)], expiresIn };
}

/** Sends a request upstream (the client, or a test's stand-in). */
export type Send = (request: UpstreamRequest) => Promise<UpstreamResponse>;

/**
 * Asks a Bearer challenge's `realm` for a token, with its `service` and `scope`, sending
 * `authorization` (Basic) or nothing: `Bearer <token>` and how long to keep it (renewed a little
 * early, so that a request never goes out with a token about to lapse), or undefined.
 */
export async function requestToken(
  send: Send,
  realm: URL,
  params: Readonly<Record<string, string>>,
  authorization?: string,
): Promise<{ readonly authorization: string; readonly ttlMs: number } | undefined> {
  const url = new URL(realm);
  for (const name of ['service', 'scope'] as const) {
    const value = params[name];
    if (value !== undefined) url.searchParams.set(name, value);
  }
  const response = await send({
    origin: url.origin,
    method: 'GET',
    path: `${url.pathname}${url.search}`,
    headers: { ...(authorization ? { authorization } : {}), accept: 'application/json' },
  });
  const body = await readCapped(response, MAX_TOKEN_RESPONSE);
  const token = response.statusCode === 200 && body ? parseTokenResponse(body) : undefined;
  const value = token?.tokens[0];
  if (!token || value === undefined) return undefined;
  return { authorization: `Bearer ${value}`, ttlMs: Math.max(1, token.expiresIn - 10) * 1000 };
}

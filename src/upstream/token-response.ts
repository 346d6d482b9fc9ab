// The body of a distribution token server's answer: `{token}` and/or `{access_token}` (OAuth2),
// with `expires_in` seconds (60 when absent, per the token spec). Read both by the relay (to
// remember tokens handed to anonymous requests) and by the login of `share` registries.

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

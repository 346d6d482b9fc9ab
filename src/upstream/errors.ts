// Failures to get an answer from an upstream server at all (as opposed to an HTTP error status,
// which is relayed): DNS, refused or reset connections, TLS verification, timeouts.

export class UpstreamUnavailableError extends Error {
  readonly code = 'UPSTREAM_UNAVAILABLE';
  /** The upstream did not answer in time (504) rather than failing outright (502). */
  readonly timeout: boolean;
  /** It answered, but its certificate did not verify: a misconfiguration or an attack, not an outage. */
  readonly tls: boolean;
  readonly reason: string;

  constructor(
    origin: string,
    reason: string,
    kind: { timeout?: boolean; tls?: boolean },
    options?: ErrorOptions,
  ) {
    super(`upstream ${origin} unavailable: ${reason}`, options);
    this.name = 'UpstreamUnavailableError';
    this.reason = reason;
    this.timeout = kind.timeout ?? false;
    this.tls = kind.tls ?? false;
  }
}

// OpenSSL verification codes as Node reports them (err.code), and Node's own TLS errors.
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH)/;

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** Wraps an undici or socket error into an UpstreamUnavailableError; other errors pass unchanged. */
export function toUpstreamError(error: unknown, origin: string): unknown {
  if (!(error instanceof Error)) return error;
  if (['AbortError', 'DestinationRefusedError', 'LoginError'].includes(error.name)) return error;
  const code =
    (error as NodeJS.ErrnoException).code ?? (error.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return error;
  return new UpstreamUnavailableError(
    origin,
    `${code}: ${error.message}`,
    { timeout: TIMEOUT_CODES.has(code), tls: TLS_CODE.test(code) },
    { cause: error },
  );
}

/** The proxy could not log in to a `share` registry with its configured credentials. */
export class LoginError extends Error {
  override readonly name = 'LoginError';

  constructor(origin: string, reason: string) {
    super(`cannot log in to ${origin} with the configured credentials: ${reason}`);
  }
}

/**
 * Upstream answered a request the proxy made for a client (an access check, a tag's HEAD) with a
 * refusal (401, 403, 404, 429, 5xx): the client gets the same refusal, its challenge and
 * Retry-After included.
 */
export class UpstreamRefusedError extends Error {
  override readonly name = 'UpstreamRefusedError';
  readonly status: number;
  /** `www-authenticate` and `retry-after`, as upstream sent them. */
  readonly headers: Readonly<Record<string, string>>;
  /** What was asked for: a 404 means a different thing for each. */
  readonly kind: 'blob' | 'manifest';

  constructor(status: number, headers: Readonly<Record<string, string>>, kind: 'blob' | 'manifest') {
    super(`upstream refused the ${kind} with ${status}`);
    this.status = status;
    this.headers = headers;
    this.kind = kind;
  }

  /** From an upstream response: its status and the headers a client needs to act on it. */
  static of(response: { statusCode: number; headers: Record<string, unknown> }, kind: 'blob' | 'manifest') {
    const headers: Record<string, string> = {};
    for (const name of ['www-authenticate', 'retry-after']) {
      const value = response.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    return new UpstreamRefusedError(response.statusCode, headers, kind);
  }
}

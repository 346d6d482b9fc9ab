// Failures to get an answer from an upstream server at all (as opposed to an HTTP error status,
// which is relayed): DNS, refused or reset connections, TLS verification, timeouts.

export class UpstreamUnavailableError extends Error {
  readonly code = 'UPSTREAM_UNAVAILABLE';
  /** The upstream did not answer in time (504) rather than failing outright (502). */
  readonly timeout: boolean;
  readonly reason: string;

  constructor(origin: string, reason: string, timeout: boolean, options?: ErrorOptions) {
    super(`upstream ${origin} unavailable: ${reason}`, options);
    this.name = 'UpstreamUnavailableError';
    this.reason = reason;
    this.timeout = timeout;
  }
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** Wraps an undici or socket error into an UpstreamUnavailableError; other errors pass unchanged. */
export function toUpstreamError(error: unknown, origin: string): unknown {
  if (!(error instanceof Error)) return error;
  if (error.name === 'AbortError') return error;
  const code =
    (error as NodeJS.ErrnoException).code ?? (error.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return error;
  return new UpstreamUnavailableError(origin, `${code}: ${error.message}`, TIMEOUT_CODES.has(code), {
    cause: error,
  });
}

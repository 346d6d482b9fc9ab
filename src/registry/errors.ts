// The registry wire error, and the one place where failures become it: the class serialised as
// the distribution spec's `{"errors":[{"code","message","detail"}]}`, the table of every wire
// error the proxy produces, the mapping of domain errors (upstream, access, destination guard)
// onto it, and the writing of it. Only the handler (handler.ts) catches, maps and logs.
// Spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
import type { ServerResponse } from 'node:http';
import { UnverifiableAccessError } from '../access/errors.ts';
import { DestinationRefusedError } from '../net/guard.ts';
import { LoginError, UpstreamRefusedError, UpstreamUnavailableError } from '../upstream/errors.ts';

export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNKNOWN'
  | 'UNAVAILABLE';

export class RegistryError extends Error {
  readonly status: number;
  readonly code: RegistryErrorCode;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: RegistryErrorCode,
    message: string,
    options: { detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegistryError';
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  toBody(): string {
    const entry: { code: string; message: string; detail?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}

/** What upstream's refusal statuses mean on the wire (404 depends on what was asked for). */
const REFUSALS: Readonly<Record<number, { code: RegistryErrorCode; message: string }>> = {
  401: { code: 'UNAUTHORIZED', message: 'authentication required' },
  403: { code: 'DENIED', message: 'requested access to the resource is denied' },
  429: { code: 'TOOMANYREQUESTS', message: 'too many requests' },
};

/** The factories, as one table: every wire error the proxy itself produces is made here. */
export const registryErrors = {
  nameInvalid: (name: string) =>
    new RegistryError(400, 'NAME_INVALID', 'invalid repository name', { detail: { name } }),
  digestInvalid: (digest: string) =>
    new RegistryError(400, 'DIGEST_INVALID', 'invalid digest: algorithm:encoded with sha256 or sha512', {
      detail: { digest },
    }),
  /** A tag that breaks the grammar names no manifest, here or upstream. */
  tagInvalid: (tag: string) =>
    new RegistryError(404, 'MANIFEST_UNKNOWN', 'invalid tag: no such manifest', { detail: { tag } }),
  unsupported: (message: string) => new RegistryError(405, 'UNSUPPORTED', message),
  notFound: (path: string) =>
    new RegistryError(404, 'NAME_UNKNOWN', 'no such registry endpoint', { detail: { path } }),
  unavailable: (message: string, cause?: unknown) =>
    new RegistryError(502, 'UNAVAILABLE', message, { cause }),
  timeout: (message: string, cause?: unknown) => new RegistryError(504, 'UNAVAILABLE', message, { cause }),
  destinationRefused: (cause: DestinationRefusedError) =>
    new RegistryError(502, 'DENIED', `upstream may not be reached through this proxy: ${cause.message}`, {
      cause,
    }),
  /** `registries[].allow` / `deny` refuse this repository: never looked up, never fetched. */
  repositoryRefused: (message: string, name: string) =>
    new RegistryError(403, 'DENIED', message, { detail: { name } }),
  /** Upstream is unreachable: the client is asked to authenticate as upstream asked it before. */
  offlineChallenge: (challenge: string) =>
    new RegistryError(401, 'UNAUTHORIZED', 'authentication required (upstream registry unreachable)', {
      headers: { 'www-authenticate': challenge },
    }),
  unverifiable: (cause?: unknown) =>
    new RegistryError(401, 'UNAUTHORIZED', 'authentication required (upstream registry unreachable)', {
      cause,
    }),
  /** Upstream's refusal, as the wire error the client would have had from upstream itself. */
  refusedUpstream: (refusal: UpstreamRefusedError) => {
    const { status, kind } = refusal;
    const known =
      status === 404
        ? {
            code: kind === 'blob' ? ('BLOB_UNKNOWN' as const) : ('MANIFEST_UNKNOWN' as const),
            message: `${kind} unknown to registry`,
          }
        : (REFUSALS[status] ?? { code: 'UNKNOWN' as const, message: `upstream answered ${status}` });
    return new RegistryError(status, known.code, known.message, { headers: { ...refusal.headers } });
  },
  manifestMismatch: (expected: string, actual: string) =>
    new RegistryError(502, 'MANIFEST_INVALID', 'upstream manifest does not match its digest', {
      detail: { expected, actual },
    }),
  manifestTooLarge: (maxSize: number) =>
    new RegistryError(
      502,
      'MANIFEST_INVALID',
      `upstream manifest is larger than ${maxSize} bytes (cache.maxManifestSize)`,
    ),
  tokenTooLarge: () => new RegistryError(502, 'UNKNOWN', 'upstream token response is too large'),
  tokenRequestTooLarge: (maxSize: number) =>
    new RegistryError(413, 'UNSUPPORTED', `token request body is larger than ${maxSize} bytes`),
  internal: (cause: unknown) => new RegistryError(500, 'UNKNOWN', 'internal error', { cause }),
} as const;

/** The same error with more headers (a challenge added at the boundary). */
export function withHeaders(error: RegistryError, headers: Record<string, string>): RegistryError {
  return new RegistryError(error.status, error.code, error.message, {
    detail: error.detail,
    headers: { ...error.headers, ...headers },
    cause: error.cause,
  });
}

export function toRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  if (error instanceof DestinationRefusedError) return registryErrors.destinationRefused(error);
  if (error instanceof UpstreamRefusedError) return registryErrors.refusedUpstream(error);
  if (error instanceof UnverifiableAccessError) return registryErrors.unverifiable(error);
  if (error instanceof LoginError) return registryErrors.unavailable(error.message, error);
  if (error instanceof UpstreamUnavailableError) {
    return error.timeout
      ? registryErrors.timeout(`upstream registry did not answer in time (${error.reason})`, error)
      : registryErrors.unavailable(`upstream registry unreachable (${error.reason})`, error);
  }
  return registryErrors.internal(error);
}

/**
 * Answers with the OCI error body, or, once headers are out, cuts the connection: a body that
 * stops short of its Content-Length is the only honest signal left (never JSON mid-stream).
 */
export function sendError(res: ServerResponse, error: RegistryError, method: string | undefined): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = error.toBody();
  res.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
    ...error.headers,
  });
  res.end(method === 'HEAD' ? undefined : body);
}

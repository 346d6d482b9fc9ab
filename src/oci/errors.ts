// The registry wire error: one class, serialised as the distribution spec's
// `{"errors":[{"code","message","detail"}]}`, and the table of its codes. Pure, no I/O.
// Spec: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes

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

/** The factories, as one table: every wire error the proxy itself produces is made here. */
export const registryErrors = {
  nameInvalid: (name: string) =>
    new RegistryError(400, 'NAME_INVALID', 'invalid repository name', { detail: { name } }),
  digestInvalid: (digest: string) =>
    new RegistryError(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', {
      detail: { digest },
    }),
  unsupported: (message: string) => new RegistryError(405, 'UNSUPPORTED', message),
  notFound: (path: string) =>
    new RegistryError(404, 'NAME_UNKNOWN', 'no such registry endpoint', { detail: { path } }),
  unavailable: (message: string, cause?: unknown) =>
    new RegistryError(502, 'UNAVAILABLE', message, { cause }),
  timeout: (message: string, cause?: unknown) => new RegistryError(504, 'UNAVAILABLE', message, { cause }),
  internal: (cause: unknown) => new RegistryError(500, 'UNKNOWN', 'internal error', { cause }),
} as const;

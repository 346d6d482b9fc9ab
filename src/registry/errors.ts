// The one place where failures become registry wire errors: every error thrown while handling
// an intercepted request reaches toRegistryError/sendError, and only the handler logs it.
import type { ServerResponse } from 'node:http';
import { DestinationRefusedError } from '../net/guard.ts';
import { RegistryError, registryErrors } from '../oci/errors.ts';
import { LoginError, UpstreamUnavailableError } from '../upstream/errors.ts';

export function toRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  if (error instanceof DestinationRefusedError) {
    return new RegistryError(
      502,
      'DENIED',
      `upstream may not be reached through this proxy: ${error.message}`,
      {
        cause: error,
      },
    );
  }
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

// The registry handler: every decrypted request to an intercepted host comes here. It routes
// by the /v2/ grammar, applies policy (pushes), hands the request to blobs, manifests or the
// passthrough, and is the single error boundary: failures become OCI error bodies, and one
// completion log line per request is written when its response is closed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatAuthority, type Destination } from '../http/destination.ts';
import { redactUrl, type Logger } from '../log.ts';
import { registryErrors, type RegistryError } from '../oci/errors.ts';
import { serveBlob, type BlobDeps } from './blobs.ts';
import { sendError, toRegistryError } from './errors.ts';
import { serveManifest, type ManifestDeps } from './manifests.ts';
import { newOutcome } from './outcome.ts';
import { servePassthrough, type PassthroughDeps } from './passthrough.ts';
import { isWrite, parseRoute } from './routes.ts';

export interface RegistryHandlerOptions extends BlobDeps, ManifestDeps, PassthroughDeps {
  readonly allowPush: boolean;
  readonly log: Logger;
}

export function createRegistryHandler(options: RegistryHandlerOptions) {
  const { log } = options;
  return async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    destination: Destination,
  ): Promise<void> {
    const started = performance.now();
    const route = parseRoute(req.url ?? '/');
    const outcome = newOutcome();
    let failure: RegistryError | undefined;

    // Written once the response is over (sent, or cut), so `aborted` and `bytes` are true.
    res.once('close', () => {
      log.info(
        {
          host: formatAuthority(destination),
          method: req.method,
          path: redactUrl(req.url ?? '/'),
          route: route.kind,
          ...('name' in route ? { repo: route.name } : {}),
          status: res.statusCode,
          bytes: outcome.bytes,
          ms: Math.round(performance.now() - started),
          cache: outcome.cache,
          ...(outcome.shared ? { shared: true } : {}),
          ...(res.writableFinished ? {} : { aborted: true }),
          ...(failure ? { err: failure.message, code: failure.code, cause: errorText(failure.cause) } : {}),
        },
        'request',
      );
    });

    try {
      // A path, or an http(s) URL as plain-HTTP proxy requests send it (RFC 9112 §3.2): `*`, an
      // authority or junk names no registry endpoint and cannot be relayed. A 404, not a 502.
      if (!/^(?:\/|https?:\/\/)/.test(req.url ?? '/')) throw registryErrors.notFound(req.url ?? '');
      if (!options.allowPush && isWrite(req.method) && route.kind !== 'other') {
        throw registryErrors.unsupported(
          `${req.method} method is not allowed: pushes are disabled (allowPush: false)`,
        );
      }
      const reading = req.method === 'GET' || req.method === 'HEAD';
      const cacheable = options.policy(destination) !== 'no-cache';
      if (!cacheable) {
        await servePassthrough(req, res, destination, route, options, outcome);
      } else if (route.kind === 'blob' && reading) {
        await serveBlob(req, res, destination, route, options, outcome);
      } else if (route.kind === 'manifest' && reading) {
        await serveManifest(req, res, destination, route, options, outcome);
      } else {
        await servePassthrough(req, res, destination, route, options, outcome);
      }
    } catch (error) {
      if (clientWentAway(res, error)) return;
      failure = toRegistryError(error);
      sendError(res, failure, req.method);
    }
  };
}

/** The client closed its connection first: nothing to answer and nothing to report as an error. */
function clientWentAway(res: ServerResponse, error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (
    res.destroyed &&
    (code === 'ERR_STREAM_PREMATURE_CLOSE' || (error as Error | undefined)?.name === 'AbortError')
  );
}

function errorText(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  return cause instanceof Error ? cause.message : JSON.stringify(cause);
}

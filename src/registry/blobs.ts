// GET/HEAD /v2/<name>/blobs/<digest>: from the cache when it is there (Range supported), else
// from the fill in progress, else one upstream fetch (redirects followed here) that streams to
// the client and into the cache at once. Other clients may join that fill only once upstream
// has said they may read the repository (authorize.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlobStore, ByteRange, ByteSource } from '../cache/blobs.ts';
import type { Fill, Fills } from '../cache/fills.ts';
import { originOf, formatAuthority, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import type { Logger } from '../log.ts';
import type { Upstream, UpstreamResponse } from '../upstream/client.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { Access } from './access.ts';
import type { PolicyOf } from './policy.ts';
import { ensureAccess, recordAccess } from './authorize.ts';
import type { Outcome } from './outcome.ts';
import { pump } from './pump.ts';
import { parseRange } from './range.ts';
import { sendResponse, wholeObjectHeaders } from './relay.ts';

export interface BlobDeps {
  readonly store: BlobStore;
  readonly fills: Fills;
  readonly upstream: Upstream;
  readonly access: Access;
  readonly policy: PolicyOf;
  readonly log: Logger;
  /** Called once per failure to write the cache, so the cause is logged once, not per request. */
  readonly cacheWriteFailed: (error: unknown) => void;
}

export async function serveBlob(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  blob: { readonly name: string; readonly digest: string },
  deps: BlobDeps,
  outcome: Outcome,
): Promise<void> {
  const { digest } = blob;
  const content = { kind: 'blob', name: blob.name, digest } as const;
  const stored = await deps.store.stat(digest);
  if (stored) {
    await ensureAccess(req, destination, content, deps);
    outcome.cache = 'hit';
    return sendSized(req, res, digest, stored.size, (range) => deps.store.open(digest, range), outcome);
  }

  const running = deps.fills.lookup(digest);
  const joined = running instanceof Promise ? await running : running;
  if (joined) {
    await ensureAccess(req, destination, content, deps);
    // Checked after that await, and opened in this same turn (sendFill opens before it yields):
    // a fill that ended, or a relay that dropped bytes, cannot be joined; look again.
    if (!joined.joinable) return serveBlob(req, res, destination, blob, deps, outcome);
    outcome.cache = joined.caching ? 'miss' : 'bypass';
    outcome.shared = true;
    return sendFill(req, res, joined, outcome);
  }

  outcome.cache = 'miss';
  if (req.method === 'HEAD') return relayHead(req, res, destination, blob, deps, outcome);

  const claim = deps.fills.claim(digest);
  let response: UpstreamResponse;
  try {
    ({ response } = await requestFollowingRedirects(deps.upstream, {
      origin: originOf(destination),
      method: 'GET',
      path: req.url ?? '/',
      headers: wholeObjectHeaders(req),
    }));
  } catch (error) {
    claim.release();
    throw error;
  }
  if (response.statusCode !== 200) {
    claim.release();
    return sendResponse(res, response, outcome);
  }

  recordAccess(req, destination, blob.name, digest, deps.access);
  const size = contentLength(response);
  let fill: Fill;
  try {
    fill = await claim.start({ body: response.body, size });
  } catch (error) {
    response.body.destroy();
    throw error;
  }
  // The cache cannot be written (read-only, full, permissions): the fill relays, unstored.
  if (!fill.caching) outcome.cache = 'bypass';
  fill.settled.then(
    (result) => {
      if (!result.stored) deps.cacheWriteFailed(result.cause);
    },
    (error: unknown) =>
      deps.log.warn(
        { digest, host: formatAuthority(destination), err: (error as Error).message },
        'blob fill failed: nothing stored',
      ),
  );
  return sendFill(req, res, fill, outcome);
}

function blobHeaders(digest: string, cache: Outcome['cache']): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    etag: `"${digest}"`,
    'accept-ranges': 'bytes',
    'x-cache': cache.toUpperCase(),
  };
}

/** A blob of known size, whole or one Range of it, from `open` (the store or a growing fill). */
async function sendSized(
  req: IncomingMessage,
  res: ServerResponse,
  digest: string,
  size: number,
  open: (range?: ByteRange) => ByteSource | Promise<ByteSource>,
  outcome: Outcome,
): Promise<void> {
  const headers = blobHeaders(digest, outcome.cache);
  const range = parseRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
    return;
  }
  const selected = range.kind === 'range' ? range.range : undefined;
  const length = selected ? selected.end - selected.start + 1 : size;
  // Opened before the headers go out: a blob that vanished since stat() is still an OCI error.
  const source = req.method === 'HEAD' || length === 0 ? undefined : await open(selected);
  if (selected) {
    res.writeHead(206, {
      ...headers,
      'content-range': `bytes ${selected.start}-${selected.end}/${size}`,
      'content-length': length,
    });
  } else {
    res.writeHead(200, { ...headers, 'content-length': size });
  }
  if (source) await pump(source, res, outcome, { length });
  else res.end();
}

async function sendFill(
  req: IncomingMessage,
  res: ServerResponse,
  fill: Fill,
  outcome: Outcome,
): Promise<void> {
  if (fill.size !== undefined)
    return sendSized(req, res, fill.digest, fill.size, (range) => fill.open(range), outcome);
  // Upstream sent no length: the whole blob, chunked, ended only once verified.
  res.writeHead(200, blobHeaders(fill.digest, outcome.cache));
  if (req.method === 'HEAD') res.end();
  else await pump(fill.open(), res, outcome);
}

async function relayHead(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  blob: { name: string; digest: string },
  deps: BlobDeps,
  outcome: Outcome,
): Promise<void> {
  const { response } = await requestFollowingRedirects(deps.upstream, {
    origin: originOf(destination),
    method: 'HEAD',
    path: req.url ?? '/',
    headers: withoutHopByHop(req.headers),
  });
  if (response.statusCode >= 200 && response.statusCode < 300) {
    recordAccess(req, destination, blob.name, blob.digest, deps.access);
  }
  return sendResponse(res, response, outcome);
}

function contentLength(response: UpstreamResponse): number | undefined {
  const value = response.headers['content-length'];
  const size = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

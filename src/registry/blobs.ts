// GET/HEAD /v2/<name>/blobs/<digest>: from the cache when it is there (Range supported), else
// from the fill in progress, else one upstream fetch (redirects followed here) that streams to
// the client and into the cache at once. Other clients may join that fill only once upstream
// has said they may read the repository (access.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlobStore } from '../cache/blobs.ts';
import type { Fill, Fills } from '../cache/fills.ts';
import { originOf, formatAuthority, type Destination } from '../http/destination.ts';
import { withoutHopByHop } from '../http/headers.ts';
import type { Logger } from '../log.ts';
import type { Upstream, UpstreamResponse } from '../upstream/client.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { Access } from './access.ts';
import { PARTIAL_REQUEST_HEADERS, ensureAccess, recordAccess } from './authorize.ts';
import { parseRange } from './range.ts';
import { sendResponse, streamBody } from './relay.ts';

export interface BlobDeps {
  readonly store: BlobStore;
  readonly fills: Fills;
  readonly upstream: Upstream;
  readonly access: Access;
  readonly log: Logger;
  /** Called once per failure to write the cache, so the cause is logged once, not per request. */
  readonly cacheWriteFailed: (error: unknown) => void;
}

export type CacheStatus = 'hit' | 'miss' | 'bypass';

export interface BlobOutcome {
  readonly cache: CacheStatus;
  readonly bytes: number;
  /** This request joined a fill that another request started. */
  readonly shared?: boolean;
}

export async function serveBlob(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  blob: { readonly name: string; readonly digest: string },
  deps: BlobDeps,
): Promise<BlobOutcome> {
  const { digest } = blob;
  const stored = await deps.store.stat(digest);
  if (stored) {
    await ensureAccess(req, destination, { kind: 'blob', name: blob.name, digest: blob.digest }, deps);
    return { cache: 'hit', bytes: await sendStored(req, res, digest, stored.size, deps.store) };
  }

  const running = deps.fills.lookup(digest);
  const joined = running instanceof Promise ? await running : running;
  if (joined) {
    await ensureAccess(req, destination, { kind: 'blob', name: blob.name, digest: blob.digest }, deps);
    return { cache: 'miss', shared: true, bytes: await sendFill(req, res, joined, 'MISS') };
  }

  if (req.method === 'HEAD')
    return { cache: 'miss', bytes: await relayHead(req, res, destination, blob, deps) };

  const claim = deps.fills.claim(digest);
  let response: UpstreamResponse;
  try {
    const headers = withoutHopByHop(req.headers);
    for (const name of PARTIAL_REQUEST_HEADERS) delete headers[name];
    ({ response } = await requestFollowingRedirects(deps.upstream, {
      origin: originOf(destination),
      method: 'GET',
      path: req.url ?? '/',
      headers,
    }));
  } catch (error) {
    claim.release();
    throw error;
  }
  if (response.statusCode !== 200) {
    claim.release();
    return { cache: 'miss', bytes: await sendResponse(res, response) };
  }

  recordAccess(req, destination, blob.name, blob.digest, deps.access);
  const size = contentLength(response);
  let fill: Fill;
  try {
    fill = await claim.start({ body: response.body, size });
  } catch (error) {
    // The cache cannot be written (read-only, full, permissions): serve the client anyway.
    deps.cacheWriteFailed(error);
    return { cache: 'bypass', bytes: await sendUncached(res, response, digest, size) };
  }
  fill.settled.catch((error: unknown) =>
    deps.log.warn(
      { digest, host: formatAuthority(destination), err: (error as Error).message },
      'blob fill failed: nothing stored',
    ),
  );
  return { cache: 'miss', bytes: await sendFill(req, res, fill, 'MISS') };
}

function blobHeaders(digest: string, cache: string): Record<string, string> {
  return {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    etag: `"${digest}"`,
    'accept-ranges': 'bytes',
    'x-cache': cache,
  };
}

async function sendStored(
  req: IncomingMessage,
  res: ServerResponse,
  digest: string,
  size: number,
  store: BlobStore,
): Promise<number> {
  const range = parseRange(req.headers.range, size);
  const headers = blobHeaders(digest, 'HIT');
  if (range.kind === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
    return 0;
  }
  if (range.kind === 'range') {
    const { start, end } = range.range;
    res.writeHead(206, {
      ...headers,
      'content-range': `bytes ${start}-${end}/${size}`,
      'content-length': end - start + 1,
    });
  } else {
    res.writeHead(200, { ...headers, 'content-length': size });
  }
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return 0;
  }
  return streamBody(store.read(digest, range.kind === 'range' ? range.range : undefined), res);
}

async function sendFill(
  req: IncomingMessage,
  res: ServerResponse,
  fill: Fill,
  cache: string,
): Promise<number> {
  const headers = blobHeaders(fill.digest, cache);
  const size = fill.size;
  if (size === undefined) {
    // Upstream sent no length: the whole blob, chunked, ended only once verified.
    res.writeHead(200, headers);
    if (req.method !== 'HEAD') return streamBody(fill.reader(), res);
    res.end();
    return 0;
  }
  const range = parseRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': 0 }).end();
    return 0;
  }
  if (range.kind === 'range') {
    const { start, end } = range.range;
    res.writeHead(206, {
      ...headers,
      'content-range': `bytes ${start}-${end}/${size}`,
      'content-length': end - start + 1,
    });
  } else {
    res.writeHead(200, { ...headers, 'content-length': size });
  }
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return 0;
  }
  return streamBody(fill.reader(range.kind === 'range' ? range.range : undefined), res);
}

/** Streams an upstream body straight to the client, verifying nothing: the cache is unusable. */
async function sendUncached(
  res: ServerResponse,
  response: UpstreamResponse,
  digest: string,
  size: number | undefined,
): Promise<number> {
  res.writeHead(200, {
    ...blobHeaders(digest, 'BYPASS'),
    ...(size === undefined ? {} : { 'content-length': size }),
  });
  return streamBody(response.body, res);
}

async function relayHead(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  blob: { name: string; digest: string },
  deps: BlobDeps,
): Promise<number> {
  const { response } = await requestFollowingRedirects(deps.upstream, {
    origin: originOf(destination),
    method: 'HEAD',
    path: req.url ?? '/',
    headers: withoutHopByHop(req.headers),
  });
  if (response.statusCode >= 200 && response.statusCode < 300)
    recordAccess(req, destination, blob.name, blob.digest, deps.access);
  return sendResponse(res, response);
}

function contentLength(response: UpstreamResponse): number | undefined {
  const value = response.headers['content-length'];
  const size = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

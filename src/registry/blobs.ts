// GET/HEAD /v2/<name>/blobs/<digest>: from the cache when it is there (Range supported; or a
// 307 to the object store's presigned URL when the store gives one), else
// from the fill in progress, else one upstream fetch (redirects followed here) that streams to
// the client and into the cache at once. Other clients may join that fill only once upstream
// has said they may read the repository (access/authorize.ts).
import { ensureAccess, recordAccess } from '../access/authorize.ts';
import type { ByteRange, ByteSource } from '../cache/blobs.ts';
import { NotAdmittedError } from '../cache/errors.ts';
import type { Fill } from '../cache/fills.ts';
import { originOf } from '../http/destination.ts';
import { wholeObjectHeaders, withoutHopByHop } from '../http/headers.ts';
import type { UpstreamResponse } from '../upstream/client.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { Exchange, RegistryDeps } from './context.ts';
import type { Outcome } from './outcome.ts';
import { pump } from './respond/pump.ts';
import { parseRange } from './respond/range.ts';
import { sendResponse } from './respond/relay.ts';

interface BlobRoute {
  readonly name: string;
  readonly digest: string;
}

export async function serveBlob(x: Exchange, blob: BlobRoute, deps: RegistryDeps): Promise<void> {
  const { digest } = blob;
  const content = { kind: 'blob', name: blob.name, digest } as const;
  // Held from before the stat to the end of the response: eviction never deletes under a reader.
  const release = deps.book.reading(digest);
  try {
    const stored = await deps.store.stat(digest);
    if (stored) {
      await ensureAccess(x, content, deps);
      x.outcome.cache = 'hit';
      deps.book.used(digest);
      // An object store's presigned URL (storage.s3.redirect): the client reads the bucket itself.
      const location = x.req.method === 'GET' ? await deps.store.location?.(digest) : undefined;
      if (location !== undefined) return sendRedirect(x, digest, location);
      return await sendSized(x, digest, stored.size, (range) => deps.store.open(digest, range));
    }
  } finally {
    release();
  }

  const running = deps.fills.lookup(digest);
  const joined = running instanceof Promise ? await running : running;
  if (joined) {
    await ensureAccess(x, content, deps);
    // Checked after that await, and opened in this same turn (sendFill opens before it yields):
    // a fill that ended, or a relay that dropped bytes, cannot be joined; look again.
    if (!joined.joinable) return serveBlob(x, blob, deps);
    x.outcome.cache = joined.caching ? 'miss' : 'bypass';
    x.outcome.shared = true;
    return sendFill(x, joined);
  }

  x.outcome.cache = 'miss';
  if (x.req.method === 'HEAD') return relayHead(x, blob, deps);
  return fetchBlob(x, blob, deps);
}

/** Nobody has it: one upstream GET, streamed to this client and into a new fill. */
async function fetchBlob(x: Exchange, blob: BlobRoute, deps: RegistryDeps): Promise<void> {
  const { digest } = blob;
  const claim = deps.fills.claim(digest);
  let response: UpstreamResponse;
  try {
    ({ response } = await requestFollowingRedirects(deps.upstream, {
      origin: originOf(x.destination),
      method: 'GET',
      path: x.req.url ?? '/',
      headers: wholeObjectHeaders(x.req),
    }));
  } catch (error) {
    claim.release();
    throw error;
  }
  if (response.statusCode !== 200) {
    claim.release();
    return sendResponse(x.res, response, x.outcome);
  }

  recordAccess(x, blob.name, digest, deps.access);
  const size = contentLength(response);
  let fill: Fill;
  try {
    // Too large for the cache, or the disk below its floor: relayed, verified, not stored.
    const notStored = await deps.book.admit(size, x.host);
    fill = await claim.start({ body: response.body, size }, notStored ? { notStored } : {});
  } catch (error) {
    response.body.destroy();
    throw error;
  }
  // The cache cannot be written (read-only, full, permissions): the fill relays, unstored.
  if (!fill.caching) x.outcome.cache = 'bypass';
  fill.settled.then(
    (result) => {
      if (result.stored) deps.book.storedBlob(digest, result.size, { host: x.host, repository: blob.name });
      else if (!(result.cause instanceof NotAdmittedError)) deps.cacheWriteFailed(result.cause);
    },
    (error: unknown) =>
      deps.log.warn(
        { digest, host: x.host, err: (error as Error).message },
        'blob fill failed: nothing stored',
      ),
  );
  return sendFill(x, fill);
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
  x: Exchange,
  digest: string,
  size: number,
  open: (range?: ByteRange) => ByteSource | Promise<ByteSource>,
): Promise<void> {
  const { req, res, outcome } = x;
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

/** A 307 to where the stored blob can be read (distribution answers blob GETs so with S3). */
function sendRedirect(x: Exchange, digest: string, location: string): void {
  const {
    'content-type': _type,
    'accept-ranges': _ranges,
    ...headers
  } = blobHeaders(digest, x.outcome.cache);
  x.res.writeHead(307, { ...headers, location, 'content-length': 0 }).end();
}

async function sendFill(x: Exchange, fill: Fill): Promise<void> {
  if (fill.size !== undefined) {
    await sendSized(x, fill.digest, fill.size, (range) => fill.open(range));
  } else {
    // Upstream sent no length: the whole blob, chunked, ended only once verified.
    x.res.writeHead(200, blobHeaders(fill.digest, x.outcome.cache));
    if (x.req.method === 'HEAD') x.res.end();
    else await pump(fill.open(), x.res, x.outcome);
  }
  // The disk failed during the fill: the headers said MISS, the log line tells what happened.
  if (!fill.caching) x.outcome.cache = 'bypass';
}

async function relayHead(x: Exchange, blob: BlobRoute, deps: RegistryDeps): Promise<void> {
  const { response } = await requestFollowingRedirects(deps.upstream, {
    origin: originOf(x.destination),
    method: 'HEAD',
    path: x.req.url ?? '/',
    headers: withoutHopByHop(x.req.headers),
  });
  if (response.statusCode >= 200 && response.statusCode < 300) {
    recordAccess(x, blob.name, blob.digest, deps.access);
  }
  return sendResponse(x.res, response, x.outcome);
}

function contentLength(response: UpstreamResponse): number | undefined {
  const value = response.headers['content-length'];
  const size = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

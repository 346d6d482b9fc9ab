// GET/HEAD /v2/<name>/blobs/<digest>: from the cache when it is there (Range supported; or a
// 307 to the object store's presigned URL when the store gives one), else from the fill in
// progress, else one upstream fetch (the registry's mirrors first, mirrored.ts; redirects
// followed here) that streams to the client and into the cache at once. Other clients may join that fill only once upstream
// has said they may read the repository (access/authorize.ts).
import type { Readable } from 'node:stream';
import { ensureAccess, recordAccess } from '../access/authorize.ts';
import type { ByteRange, ByteSource } from '../cache/blobs.ts';
import { NotAdmittedError } from '../cache/errors.ts';
import type { Fill, FillSource } from '../cache/fills.ts';
import { originOf } from '../http/destination.ts';
import { wholeObjectHeaders, withoutHopByHop } from '../http/headers.ts';
import type { UpstreamResponse } from '../upstream/client.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { MirrorChain, MirrorFailure, MirrorSource } from '../upstream/mirrors.ts';
import { DigestMismatchError, SizeMismatchError } from '../oci/digest.ts';
import { blobFromMirrors } from './mirrored.ts';
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

  // Called only when this request's fill, streamed from another replica, takes that replica's
  // fetch over (cluster/fills.ts): the dead holder never recorded the blob, so this one does.
  let tookOver = false;
  const running = deps.fills.lookup(digest, (start) => {
    tookOver = true;
    return refetchBlob(x, blob, start, deps);
  });
  const joined = running instanceof Promise ? await running : running;
  if (joined) {
    joined.settled.then(
      (result) => {
        if (tookOver && result.stored)
          deps.book.storedBlob(digest, result.size, { host: x.host, repository: blob.name });
      },
      () => undefined,
    );
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

/**
 * Nobody has it: one upstream GET, from the registry's mirrors first when it has some, streamed
 * to this client and into a new fill.
 */
async function fetchBlob(x: Exchange, blob: BlobRoute, deps: RegistryDeps): Promise<void> {
  const { digest } = blob;
  const claim = deps.fills.claim(digest);
  let source: BlobSource;
  try {
    source = (await blobFromMirrors(x, blob, deps)) ?? (await fromRegistry(x, blob, deps));
  } catch (error) {
    claim.release();
    throw error;
  }
  if ('response' in source) {
    claim.release();
    return sendResponse(x.res, source.response, x.outcome);
  }
  let fill: Fill;
  try {
    // Too large for the cache, or the disk below its floor: relayed, verified, not stored.
    const notStored = await deps.book.admit(source.size, x.host);
    fill = await claim.start(source, notStored ? { notStored } : {});
  } catch (error) {
    source.body.destroy();
    throw error;
  }
  // The cache cannot be written (read-only, full, permissions): the fill relays, unstored.
  if (!fill.caching) x.outcome.cache = 'bypass';
  fill.settled.then(
    (result) => {
      if (result.stored) deps.book.storedBlob(digest, result.size, { host: x.host, repository: blob.name });
      else if (!(result.cause instanceof NotAdmittedError)) deps.cacheWriteFailed(result.cause);
      if (source.chain) deps.mirrors?.served(source.chain, source.mirror ?? 'registry', 'blob');
    },
    (error: unknown) => {
      // A mirror's wrong or cut-off bytes: it is backed off, so the client's retry goes elsewhere.
      if (source.chain && source.mirror) deps.mirrors?.failed(source.chain, source.mirror, failureOf(error));
      deps.log.warn(
        { digest, host: x.host, mirror: source.mirror?.name, err: (error as Error).message },
        'blob fill failed: nothing stored',
      );
    },
  );
  return sendFill(x, fill);
}

/**
 * The rest of the blob from byte `start`, fetched upstream with this client's own request: how a
 * fill streamed from another replica goes on when that replica dies (cluster/fills.ts).
 */
async function refetchBlob(
  x: Exchange,
  blob: BlobRoute,
  start: number,
  deps: RegistryDeps,
): Promise<AsyncIterable<Buffer>> {
  const { response } = await requestFollowingRedirects(deps.upstream, {
    origin: originOf(x.destination),
    method: 'GET',
    path: x.req.url ?? '/',
    headers: { ...wholeObjectHeaders(x.req), ...(start > 0 ? { range: `bytes=${start}-` } : {}) },
    bulk: true,
  });
  if (response.statusCode !== 200 && !(start > 0 && response.statusCode === 206)) {
    await response.body.dump().catch(() => undefined);
    throw new Error(`upstream answered ${response.statusCode} to the rest of ${blob.digest}`);
  }
  recordAccess(x, blob.name, blob.digest, deps.access);
  // A registry that ignores Range sends it all: the bytes before `start` are dropped.
  return response.statusCode === 200 && start > 0 ? skipped(response.body, start) : response.body;
}

async function* skipped(body: AsyncIterable<Buffer>, count: number): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    if (count >= chunk.length) count -= chunk.length;
    else {
      yield count === 0 ? chunk : chunk.subarray(count);
      count = 0;
    }
  }
}

/** Where a new fill reads from, or the registry's answer to relay when it is not a 200. */
type BlobSource =
  | (FillSource & {
      readonly body: Readable;
      readonly chain?: MirrorChain | undefined;
      readonly mirror?: MirrorSource;
    })
  | { readonly response: UpstreamResponse };

/** The registry's own GET; its 200 records who may read the blob (access/authorize.ts). */
async function fromRegistry(x: Exchange, blob: BlobRoute, deps: RegistryDeps): Promise<BlobSource> {
  const { response } = await requestFollowingRedirects(deps.upstream, {
    origin: originOf(x.destination),
    method: 'GET',
    path: x.req.url ?? '/',
    headers: wholeObjectHeaders(x.req),
    bulk: true,
  });
  if (response.statusCode !== 200) return { response };
  recordAccess(x, blob.name, blob.digest, deps.access);
  return { body: response.body, size: contentLength(response), chain: deps.mirrors?.chainOf(x.destination) };
}

function failureOf(error: unknown): MirrorFailure {
  return error instanceof DigestMismatchError || error instanceof SizeMismatchError ? 'digest' : 'body';
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

// GET/HEAD /v2/<name>/manifests/<reference>.
// - By digest: served from the cache when it is there (and its media type is acceptable), else
//   fetched once, verified against the digest, stored.
// - By tag: upstream is asked with a HEAD (which Docker Hub does not count against pull limits)
//   carrying the client's own Accept and credentials; an unchanged digest is served from the
//   cache. Within `tagTtl` upstream is not asked at all. When upstream is unreachable or answers
//   5xx/429, a cached tag younger than `maxStale` is served stale, saying so.
// A client's HEAD never becomes an upstream GET.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ManifestStore, StoredManifest, TagRecord } from '../cache/manifests.ts';
import { formatAuthority, originOf, type Destination } from '../http/destination.ts';
import type { Logger } from '../log.ts';
import { digestOf, parseDigest } from '../oci/digest.ts';
import { RegistryError, registryErrors } from '../oci/errors.ts';
import { accepts } from '../oci/media-types.ts';
import type { Upstream, UpstreamResponse } from '../upstream/client.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { readCapped } from '../upstream/body.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { Access } from './access.ts';
import type { PolicyOf } from './policy.ts';
import { deniedBy, ensureAccess, mayServeOffline, recordAccess, unverifiable } from './authorize.ts';
import type { CacheStatus, Outcome } from './outcome.ts';
import { sendBuffer, sendResponse, wholeObjectHeaders } from './relay.ts';

export interface Freshness {
  /** How long a tag is served without asking upstream. */
  readonly tagTtlMs: number;
  /** How old a tag may be and still be served when upstream cannot answer. */
  readonly maxStaleMs: number;
}

export interface ManifestDeps {
  readonly manifests: ManifestStore;
  readonly upstream: Upstream;
  readonly access: Access;
  readonly policy: PolicyOf;
  readonly log: Logger;
  /** Tag freshness for a destination (per registry, falling back to the cache-wide settings). */
  readonly freshness: (destination: Destination) => Freshness;
  readonly maxManifestSize: number;
  readonly now: () => number;
}

interface ManifestRoute {
  readonly name: string;
  readonly reference: string;
  readonly byDigest: boolean;
}

export async function serveManifest(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  route: ManifestRoute,
  deps: ManifestDeps,
  outcome: Outcome,
): Promise<void> {
  // Anything that is not answered from the cache below went to upstream for its answer.
  outcome.cache = 'miss';
  return route.byDigest
    ? serveByDigest(req, res, destination, route, deps, outcome)
    : serveByTag(req, res, destination, route, deps, outcome);
}

async function serveByDigest(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  route: ManifestRoute,
  deps: ManifestDeps,
  outcome: Outcome,
): Promise<void> {
  const cached = await deps.manifests.get(route.reference);
  if (cached && accepts(req.headers.accept, cached.mediaType)) {
    await ensureAccess(req, destination, { kind: 'manifest', name: route.name, digest: cached.digest }, deps);
    return send(req, res, cached, 'hit', outcome);
  }
  if (req.method === 'HEAD') return relayUpstream(req, res, destination, route, 'HEAD', deps, outcome);
  const response = await ask(req, destination, route, 'GET', deps);
  if (response.statusCode !== 200) return sendResponse(res, response, outcome);
  const fetched = await storeManifest(response, route.reference, deps);
  recordAccess(req, destination, route.name, fetched.digest, deps.access);
  return send(req, res, fetched, 'miss', outcome);
}

async function serveByTag(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  route: ManifestRoute,
  deps: ManifestDeps,
  outcome: Outcome,
): Promise<void> {
  const host = formatAuthority(destination);
  const record = await deps.manifests.getTag(host, route.name, route.reference);
  const cached =
    record && accepts(req.headers.accept, record.mediaType)
      ? await deps.manifests.get(record.digest)
      : undefined;
  const content = { kind: 'manifest', name: route.name } as const;
  // What the tag resolves to, as upstream confirmed it just now.
  const rememberTag = (entry: Omit<TagRecord, 'checkedAt'>) =>
    deps.manifests.putTag(host, route.name, route.reference, { ...entry, checkedAt: deps.now() });

  if (record && cached && deps.now() - record.checkedAt < deps.freshness(destination).tagTtlMs) {
    await ensureAccess(req, destination, { ...content, digest: cached.digest }, deps);
    return send(req, res, cached, 'hit', outcome);
  }

  let head: UpstreamResponse;
  try {
    head = await ask(req, destination, route, 'HEAD', deps);
    await head.body.dump();
  } catch (error) {
    if (!(error instanceof UpstreamUnavailableError)) throw error;
    return serveStale(req, res, destination, route, record, cached, deps, outcome, error.reason);
  }
  const status = head.statusCode;
  if (status === 429 || status >= 500) {
    return serveStale(
      req,
      res,
      destination,
      route,
      record,
      cached,
      deps,
      outcome,
      `upstream answered ${status}`,
      head,
    );
  }
  if (status < 200 || status >= 300) return answerWith(req, res, head, destination, route, deps, outcome);

  // Upstream says this client may read the tag, and what it resolves to now.
  const digest = headerValue(head, 'docker-content-digest');
  if (cached && record && digest === record.digest) {
    recordAccess(req, destination, route.name, digest, deps.access);
    await rememberTag(record);
    return send(req, res, cached, 'revalidated', outcome);
  }
  if (req.method === 'HEAD') {
    // dockerd and containerd resolve tags with HEAD, then GET by digest: record what the tag
    // resolves to now, so their next pull can be answered from the cache (and offline) too.
    const mediaType = headerValue(head, 'content-type');
    const size = Number(headerValue(head, 'content-length'));
    if (digest !== undefined && parseDigest(digest) && mediaType && Number.isSafeInteger(size)) {
      recordAccess(req, destination, route.name, digest, deps.access);
      await rememberTag({ digest, mediaType, size });
    }
    return sendResponse(res, head, outcome);
  }

  const response = await ask(req, destination, route, 'GET', deps);
  if (response.statusCode !== 200) return sendResponse(res, response, outcome);
  const fetched = await storeManifest(
    response,
    headerValue(response, 'docker-content-digest') ?? digest,
    deps,
  );
  await rememberTag({ digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.content.length });
  recordAccess(req, destination, route.name, fetched.digest, deps.access);
  return send(req, res, fetched, 'miss', outcome);
}

/** Upstream cannot answer for the tag: serve the cached copy if it is young enough and allowed. */
async function serveStale(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  route: ManifestRoute,
  record: TagRecord | undefined,
  cached: StoredManifest | undefined,
  deps: ManifestDeps,
  outcome: Outcome,
  reason: string,
  upstreamAnswer?: UpstreamResponse,
): Promise<void> {
  const fresh =
    record !== undefined && deps.now() - record.checkedAt <= deps.freshness(destination).maxStaleMs;
  if (!cached || !record || !fresh) {
    if (upstreamAnswer) return answerWith(req, res, upstreamAnswer, destination, route, deps, outcome);
    throw registryErrors.unavailable(
      `upstream registry unreachable (${reason}) and no cached copy of this tag`,
    );
  }
  // Nobody can ask upstream who may read this: only public content and recent grants pass.
  const host = formatAuthority(destination);
  const allowed = await mayServeOffline(
    deps,
    destination,
    { name: route.name, digest: cached.digest },
    req.headers.authorization,
  );
  if (!allowed) throw unverifiable();
  deps.log.warn(
    {
      host,
      repo: route.name,
      tag: route.reference,
      digest: cached.digest,
      ageMs: deps.now() - record.checkedAt,
      reason,
    },
    'serving stale tag',
  );
  res.setHeader('warning', '110 pullthrough "Response is Stale"');
  return send(req, res, cached, 'stale', outcome);
}

/**
 * Passes on an upstream refusal of our HEAD: as is to a HEAD client. A GET client gets upstream's
 * own answer to a GET for a 401/403/404 (its body and challenge, unchanged), and the equivalent
 * OCI error for 429/5xx (same status and Retry-After) rather than a second request to a registry
 * that is already struggling.
 */
async function answerWith(
  req: IncomingMessage,
  res: ServerResponse,
  head: UpstreamResponse,
  destination: Destination,
  route: ManifestRoute,
  deps: ManifestDeps,
  outcome: Outcome,
): Promise<void> {
  if (req.method === 'HEAD') return sendResponse(res, head, outcome);
  if (head.statusCode === 429 || head.statusCode >= 500) throw deniedBy(head, 'manifest');
  return relayUpstream(req, res, destination, route, 'GET', deps, outcome);
}

function ask(
  req: IncomingMessage,
  destination: Destination,
  route: ManifestRoute,
  method: 'GET' | 'HEAD',
  deps: ManifestDeps,
): Promise<UpstreamResponse> {
  return requestFollowingRedirects(deps.upstream, {
    origin: originOf(destination),
    method,
    path: `/v2/${route.name}/manifests/${route.reference}`,
    headers: wholeObjectHeaders(req),
  }).then(({ response }) => response);
}

async function relayUpstream(
  req: IncomingMessage,
  res: ServerResponse,
  destination: Destination,
  route: ManifestRoute,
  method: 'GET' | 'HEAD',
  deps: ManifestDeps,
  outcome: Outcome,
): Promise<void> {
  const response = await ask(req, destination, route, method, deps);
  const digest = route.byDigest ? route.reference : headerValue(response, 'docker-content-digest');
  if (response.statusCode >= 200 && response.statusCode < 300 && digest !== undefined) {
    recordAccess(req, destination, route.name, digest, deps.access);
  }
  return sendResponse(res, response, outcome);
}

/** Buffers a manifest (capped), checks its digest against `expected`, and stores it. */
async function storeManifest(
  response: UpstreamResponse,
  expected: string | undefined,
  deps: ManifestDeps,
): Promise<StoredManifest> {
  const content = await readCapped(response, deps.maxManifestSize);
  if (content === undefined) throw manifestTooLarge(deps.maxManifestSize);
  const algorithm = (expected && parseDigest(expected)?.algorithm) || 'sha256';
  const digest = digestOf(content, algorithm);
  if (expected !== undefined && digest !== expected) {
    throw new RegistryError(502, 'MANIFEST_INVALID', 'upstream manifest does not match its digest', {
      detail: { expected, actual: digest },
    });
  }
  const mediaType = headerValue(response, 'content-type') ?? mediaTypeInside(content);
  await deps.manifests.put(digest, mediaType, content);
  return { digest, mediaType, content };
}

function manifestTooLarge(maxSize: number): RegistryError {
  return new RegistryError(
    502,
    'MANIFEST_INVALID',
    `upstream manifest is larger than ${maxSize} bytes (cache.maxManifestSize)`,
  );
}

function mediaTypeInside(content: Buffer): string {
  try {
    const parsed = JSON.parse(content.toString('utf8')) as { mediaType?: unknown };
    if (typeof parsed.mediaType === 'string') return parsed.mediaType;
  } catch {
    // not JSON: fall through
  }
  return 'application/vnd.oci.image.manifest.v1+json';
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  manifest: StoredManifest,
  cache: CacheStatus,
  outcome: Outcome,
): void {
  outcome.cache = cache;
  res.writeHead(200, {
    'content-type': manifest.mediaType,
    'content-length': manifest.content.length,
    'docker-content-digest': manifest.digest,
    etag: `"${manifest.digest}"`,
    'docker-distribution-api-version': 'registry/2.0',
    'x-cache': cache.toUpperCase(),
  });
  sendBuffer(req, res, manifest.content, outcome);
}

function headerValue(response: UpstreamResponse, name: string): string | undefined {
  const value = response.headers[name];
  return typeof value === 'string' ? value : undefined;
}

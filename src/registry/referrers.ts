// GET /v2/<name>/referrers/<digest>[?artifactType=]: the OCI 1.1 referrers API through the cache.
// Its answer is an image index that changes as signatures and SBOMs are pushed, so it is kept
// like a tag (keyed by registry, repository, subject digest and artifactType filter): asked
// again after tagTtl, served stale by serveStaleOn, and served only to clients that upstream
// would serve it to. A 404 (a registry without the API) is passed on, so that clients fall back
// to the `sha256-<hex>` tag schema, whose tags and manifests are cached as any others.
import { mayServeOffline, mayServeRefused, mayServeUnasked, recordAccess } from '../access/authorize.ts';
import { UnverifiableAccessError } from '../access/errors.ts';
import type { ReferrersRecord, StoredManifest } from '../cache/manifests.ts';
import { originOf } from '../http/destination.ts';
import { wholeObjectHeaders } from '../http/headers.ts';
import { digestOf } from '../oci/digest.ts';
import { readCapped } from '../upstream/body.ts';
import type { UpstreamResponse } from '../upstream/client.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import { bestEffort } from './cache-writes.ts';
import type { Exchange, RegistryDeps } from './context.ts';
import { registryErrors } from './errors.ts';
import { staleCauseOf, staleOn } from './manifests/by-tag.ts';
import type { CacheStatus } from './outcome.ts';
import { sendBuffer, sendResponse } from './respond/relay.ts';

const INDEX = 'application/vnd.oci.image.index.v1+json';
/** A media type (RFC 6838 names); any other filter is relayed, never used in a cache key. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export interface ReferrersRoute {
  readonly name: string;
  readonly digest: string;
}

/** The cached record and its index, for this subject and filter. */
interface CachedReferrers {
  readonly record: ReferrersRecord | undefined;
  readonly index: StoredManifest | undefined;
}

export async function serveReferrers(x: Exchange, route: ReferrersRoute, deps: RegistryDeps): Promise<void> {
  x.outcome.cache = 'miss';
  const query = new URL(x.req.url ?? '/', 'https://x').searchParams;
  const artifactType = query.get('artifactType') ?? '';
  if (
    [...query.keys()].some((key) => key !== 'artifactType') ||
    (artifactType && !MEDIA_TYPE.test(artifactType))
  ) {
    // Not a request the cache can key: upstream answers it as the client wrote it.
    return sendResponse(x.res, await ask(x, x.req.url ?? '/', deps), x.outcome);
  }
  const path = `/v2/${route.name}/referrers/${route.digest}${artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''}`;
  const key = [x.host, route.name, route.digest, artifactType] as const;
  const record = await deps.manifests.getReferrers(...key);
  const cached: CachedReferrers = { record, index: record && (await deps.manifests.get(record.digest)) };
  const content = cached.index && { name: route.name, digest: cached.index.digest };
  const fresh = record && deps.now() - record.checkedAt < deps.freshness(x.destination).tagTtlMs;
  if (fresh && content && cached.index && (await mayServeUnasked(x, content, deps))) {
    return send(x, deps, cached.index, record, 'hit');
  }

  let response: UpstreamResponse;
  try {
    response = await ask(x, path, deps);
  } catch (error) {
    if (!(error instanceof UpstreamUnavailableError) || !staleOn(x, deps, 'unreachable')) throw error;
    return serveStale(x, route, cached, deps, error.reason);
  }
  const status = response.statusCode;
  if (status === 200) return serveFetched(x, route, key, cached, response, deps);
  const cause = staleCauseOf(status);
  if (cause === undefined || !staleOn(x, deps, cause)) return sendResponse(x.res, response, x.outcome);
  return serveStale(x, route, cached, deps, `upstream answered ${status}`, response);
}

function ask(x: Exchange, path: string, deps: RegistryDeps): Promise<UpstreamResponse> {
  return requestFollowingRedirects(deps.upstream, {
    origin: originOf(x.destination),
    method: 'GET',
    path,
    headers: wholeObjectHeaders(x.req),
  }).then(({ response }) => response);
}

/** Upstream's index for this client: verified by the digest it is stored under, then sent. */
async function serveFetched(
  x: Exchange,
  route: ReferrersRoute,
  key: readonly [string, string, string, string],
  cached: CachedReferrers,
  response: UpstreamResponse,
  deps: RegistryDeps,
): Promise<void> {
  const content = await readCapped(response, deps.maxManifestSize);
  if (content === undefined) throw registryErrors.manifestTooLarge(deps.maxManifestSize);
  const digest = digestOf(content, 'sha256');
  const contentType = response.headers['content-type'];
  const mediaType = typeof contentType === 'string' ? contentType : INDEX;
  const filters = response.headers['oci-filters-applied'];
  const record: ReferrersRecord = {
    digest,
    mediaType,
    size: content.length,
    checkedAt: deps.now(),
    ...(typeof filters === 'string' ? { filtersApplied: filters } : {}),
  };
  const index = { digest, mediaType, content };
  recordAccess(x, route.name, digest, deps.access);
  if (!isIndex(content)) return send(x, deps, index, record, 'bypass');
  const same = cached.index?.digest === digest;
  const stored =
    same ||
    (await bestEffort(deps, async () => {
      await deps.manifests.put(digest, mediaType, content);
      deps.book.storedManifest(digest, content, { host: x.host, repository: route.name });
    }));
  const recorded = stored && (await bestEffort(deps, () => deps.manifests.putReferrers(...key, record)));
  return send(x, deps, index, record, same ? 'revalidated' : recorded ? 'miss' : 'bypass');
}

/** Upstream cannot answer (or refused, and serveStaleOn says so): the cached index, if allowed. */
async function serveStale(
  x: Exchange,
  route: ReferrersRoute,
  { record, index }: CachedReferrers,
  deps: RegistryDeps,
  reason: string,
  answer?: UpstreamResponse,
): Promise<void> {
  const young = record && deps.now() - record.checkedAt <= deps.freshness(x.destination).maxStaleMs;
  if (!record || !index || !young) {
    if (answer) return sendResponse(x.res, answer, x.outcome);
    throw registryErrors.unavailable(`upstream registry unreachable (${reason}) and no cached referrers`);
  }
  const content = { name: route.name, digest: index.digest };
  const refusal = answer !== undefined && [401, 403, 404].includes(answer.statusCode);
  if (refusal) {
    if (!(await mayServeRefused(x, content, deps))) return sendResponse(x.res, answer, x.outcome);
  } else if (!(await mayServeOffline(x, content, deps))) {
    throw new UnverifiableAccessError();
  }
  await answer?.body.dump();
  deps.log.warn(
    { host: x.host, repo: route.name, subject: route.digest, ageMs: deps.now() - record.checkedAt, reason },
    'serving stale referrers',
  );
  x.res.setHeader('warning', '110 pullthrough "Response is Stale"');
  return send(x, deps, index, record, 'stale');
}

function send(
  x: Exchange,
  deps: RegistryDeps,
  index: StoredManifest,
  record: ReferrersRecord,
  cache: CacheStatus,
): void {
  x.outcome.cache = cache;
  if (cache !== 'bypass') deps.book.used(index.digest);
  x.res.writeHead(200, {
    'content-type': index.mediaType,
    'content-length': index.content.length,
    'docker-distribution-api-version': 'registry/2.0',
    ...(record.filtersApplied === undefined ? {} : { 'oci-filters-applied': record.filtersApplied }),
    'x-cache': cache.toUpperCase(),
  });
  sendBuffer(x.req, x.res, index.content, x.outcome);
}

/** The referrers API answers an image index: a JSON object with a `manifests` list. */
function isIndex(content: Buffer): boolean {
  try {
    const parsed = JSON.parse(content.toString('utf8')) as { manifests?: unknown } | null;
    return Array.isArray(parsed?.manifests);
  } catch {
    return false;
  }
}

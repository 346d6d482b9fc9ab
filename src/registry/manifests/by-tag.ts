// GET/HEAD /v2/<name>/manifests/<tag>: upstream is asked with a HEAD (which Docker Hub does not
// count against pull limits) carrying the client's own Accept and credentials; an unchanged
// digest is served from the cache. Within `tagTtl` upstream is not asked at all. When upstream
// is unreachable or answers 5xx/429 (or, opted in with `serveStaleOn`, refuses with 401/403/404),
// a cached tag younger than `maxStale` is served stale, saying so.
import { ensureAccess, mayServeOffline, mayServeRefused, recordAccess } from '../../access/authorize.ts';
import { UnverifiableAccessError } from '../../access/errors.ts';
import type { StoredManifest, TagRecord, TagVariant } from '../../cache/manifests.ts';
import type { StaleCause } from '../../config/schema.ts';
import { parseDigest } from '../../oci/digest.ts';
import type { UpstreamResponse } from '../../upstream/client.ts';
import { UpstreamRefusedError, UpstreamUnavailableError } from '../../upstream/errors.ts';
import { bestEffort } from '../cache-writes.ts';
import type { Exchange, RegistryDeps } from '../context.ts';
import { registryErrors } from '../errors.ts';
import { sendResponse } from '../respond/relay.ts';
import { tagFromMirrors } from '../mirrored.ts';
import { serveMirrorTag } from './mirror-tag.ts';
import { sendManifest } from './send.ts';
import { acceptableVariants, preferredVariant, withVariant } from './tag-variants.ts';
import { askUpstream, headerValue, relayUpstream, storeManifest, type ManifestRoute } from './upstream.ts';

/**
 * What the cache knows of a tag: its whole record, the resolutions this client accepts, the one
 * it would be served without asking (`record`), and that one's manifest if it is still here.
 */
interface CachedTag {
  readonly stored: TagRecord | undefined;
  readonly acceptable: readonly TagVariant[];
  readonly record: TagVariant | undefined;
  readonly manifest: StoredManifest | undefined;
}

export async function serveByTag(x: Exchange, route: ManifestRoute, deps: RegistryDeps): Promise<void> {
  const tag = await cachedTag(x, route, deps);
  const { record, manifest } = tag;
  if (record && manifest && deps.now() - record.checkedAt < deps.freshness(x.destination).tagTtlMs) {
    await ensureAccess(x, { kind: 'manifest', name: route.name, digest: manifest.digest }, deps);
    return sendManifest(x, deps, manifest, 'hit');
  }

  // A mirror marked `tags: true` that knows the tag answers instead of the registry (issue 19).
  const mirrored = await tagFromMirrors(x, route, deps);
  if (mirrored && (await serveMirrorTag(x, route, tag.stored, mirrored, deps))) return;

  let head: UpstreamResponse;
  try {
    head = await askUpstream(x, route, 'HEAD', deps);
    await head.body.dump();
  } catch (error) {
    if (!(error instanceof UpstreamUnavailableError) || !staleOn(x, deps, 'unreachable')) throw error;
    return serveStale(x, route, tag, deps, error.reason);
  }
  const status = head.statusCode;
  if (status >= 200 && status < 300) {
    const chain = deps.mirrors?.chainOf(x.destination);
    if (chain) deps.mirrors?.served(chain, 'registry', 'tag');
    return serveConfirmed(x, route, tag, head, deps);
  }
  const cause = staleCauseOf(status);
  if (cause === undefined || !staleOn(x, deps, cause)) return answerWith(x, route, head, deps);
  return serveStale(x, route, tag, deps, `upstream answered ${status}`, head);
}

/** The serveStaleOn entry an upstream status falls under, if any. */
export function staleCauseOf(status: number): StaleCause | undefined {
  if (status >= 500) return '5xx';
  return status === 429 || status === 401 || status === 403 || status === 404
    ? (String(status) as StaleCause)
    : undefined;
}

export function staleOn(x: Exchange, deps: RegistryDeps, cause: StaleCause): boolean {
  return deps.freshness(x.destination).serveStaleOn.has(cause);
}

/** A refusal of this client (not a failure of upstream): served stale only under stricter access rules. */
function isRefusal(answer: UpstreamResponse | undefined): boolean {
  const status = answer?.statusCode;
  return status === 401 || status === 403 || status === 404;
}

async function cachedTag(x: Exchange, route: ManifestRoute, deps: RegistryDeps): Promise<CachedTag> {
  const stored = await deps.manifests.getTag(x.host, route.name, route.reference);
  const acceptable = acceptableVariants(stored, x.req.headers.accept);
  const record = preferredVariant(acceptable);
  const manifest = record ? await deps.manifests.get(record.digest) : undefined;
  return { stored, acceptable, record, manifest };
}

/** Upstream says this client may read the tag (a 2xx to our HEAD), and what it resolves to now. */
async function serveConfirmed(
  x: Exchange,
  route: ManifestRoute,
  { stored, acceptable, record, manifest }: CachedTag,
  head: UpstreamResponse,
  deps: RegistryDeps,
): Promise<void> {
  // What the tag resolves to, as upstream confirmed it just now: best effort, like every record.
  const rememberTag = async (entry: Omit<TagVariant, 'checkedAt'>) => {
    const { digest, mediaType, size } = entry;
    const record = withVariant(stored, { digest, mediaType, size, checkedAt: deps.now() });
    const written = await bestEffort(deps, () =>
      deps.manifests.putTag(x.host, route.name, route.reference, record),
    );
    if (written) deps.book.tagged(x.host, route.name, route.reference, entry.digest);
  };
  const digest = headerValue(head, 'docker-content-digest');
  // The resolution upstream just confirmed for this client's Accept, if the cache holds it.
  const confirmed = acceptable.find((variant) => variant.digest === digest);
  const cached = confirmed && (confirmed === record ? manifest : await deps.manifests.get(confirmed.digest));
  if (confirmed && cached) {
    recordAccess(x, route.name, confirmed.digest, deps.access);
    await rememberTag(confirmed);
    return sendManifest(x, deps, cached, 'revalidated');
  }
  if (x.req.method === 'HEAD') {
    // dockerd and containerd resolve tags with HEAD, then GET by digest: record what the tag
    // resolves to now, so their next pull can be answered from the cache (and offline) too.
    const mediaType = headerValue(head, 'content-type');
    const size = Number(headerValue(head, 'content-length'));
    if (digest !== undefined && parseDigest(digest) && mediaType && Number.isSafeInteger(size)) {
      recordAccess(x, route.name, digest, deps.access);
      await rememberTag({ digest, mediaType, size });
    }
    return sendResponse(x.res, head, x.outcome);
  }
  const response = await askUpstream(x, route, 'GET', deps);
  if (response.statusCode !== 200) return sendResponse(x.res, response, x.outcome);
  const fetched = await storeManifest(
    x,
    route,
    response,
    headerValue(response, 'docker-content-digest') ?? digest,
    deps,
  );
  await rememberTag({ digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.content.length });
  recordAccess(x, route.name, fetched.digest, deps.access);
  return sendManifest(x, deps, fetched, fetched.stored ? 'miss' : 'bypass');
}

/** Upstream cannot answer for the tag: serve the cached copy if it is young enough and allowed. */
async function serveStale(
  x: Exchange,
  route: ManifestRoute,
  { record, manifest }: CachedTag,
  deps: RegistryDeps,
  reason: string,
  upstreamAnswer?: UpstreamResponse,
): Promise<void> {
  const young =
    record !== undefined && deps.now() - record.checkedAt <= deps.freshness(x.destination).maxStaleMs;
  if (!manifest || !record || !young) {
    if (upstreamAnswer) return answerWith(x, route, upstreamAnswer, deps);
    throw registryErrors.unavailable(
      `upstream registry unreachable (${reason}) and no cached copy of this tag`,
    );
  }
  const content = { name: route.name, digest: manifest.digest };
  if (upstreamAnswer && isRefusal(upstreamAnswer)) {
    // Upstream said no to this client: its no stands unless the cache may serve it anyway.
    if (!(await mayServeRefused(x, content, deps))) return answerWith(x, route, upstreamAnswer, deps);
  } else if (!(await mayServeOffline(x, content, deps))) {
    // Nobody can ask upstream who may read this: only public content and recent grants pass.
    throw new UnverifiableAccessError();
  }
  deps.log.warn(
    {
      host: x.host,
      repo: route.name,
      tag: route.reference,
      digest: manifest.digest,
      ageMs: deps.now() - record.checkedAt,
      reason,
    },
    'serving stale tag',
  );
  x.res.setHeader('warning', '110 pullthrough "Response is Stale"');
  return sendManifest(x, deps, manifest, 'stale');
}

/**
 * Passes on an upstream refusal of our HEAD: as is to a HEAD client. A GET client gets upstream's
 * own answer to a GET for a 401/403/404 (its body and challenge, unchanged), and the equivalent
 * OCI error for 429/5xx (same status and Retry-After) rather than a second request to a registry
 * that is already struggling.
 */
async function answerWith(
  x: Exchange,
  route: ManifestRoute,
  head: UpstreamResponse,
  deps: RegistryDeps,
): Promise<void> {
  if (x.req.method === 'HEAD') return sendResponse(x.res, head, x.outcome);
  if (head.statusCode === 429 || head.statusCode >= 500) throw UpstreamRefusedError.of(head, 'manifest');
  return relayUpstream(x, route, 'GET', deps);
}

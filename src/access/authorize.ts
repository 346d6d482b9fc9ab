// Who may be served cached content, decided per request: public content and recent grants pass
// at once (access.ts); anyone else is checked upstream with a HEAD carrying their own
// credential, and gets the upstream's refusal (401 challenge, 403, 404) if it says no.
// Registries whose policy is `share` skip all of this (policy.ts).
import type { IncomingMessage } from 'node:http';
import { formatAuthority, originOf, type Destination } from '../http/destination.ts';
import { wholeObjectHeaders } from '../http/headers.ts';
import type { Upstream, UpstreamResponse } from '../upstream/client.ts';
import { UpstreamRefusedError, UpstreamUnavailableError } from '../upstream/errors.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { Access, AnswerAge } from './access.ts';
import { UnverifiableAccessError } from './errors.ts';
import type { PolicyOf } from './policy.ts';

export type ContentKind = 'blob' | 'manifest';

/** What a client asks to be served from the cache. */
export interface CachedContent {
  readonly kind: ContentKind;
  readonly name: string;
  readonly digest: string;
}

/** The client's request, and where it was going. */
export interface AccessRequest {
  readonly req: IncomingMessage;
  readonly destination: Destination;
}

export interface AccessDeps {
  readonly upstream: Upstream;
  readonly access: Access;
  readonly policy: PolicyOf;
}

/**
 * Content is served from the cache only to a client that upstream would serve it to: public
 * content and fresh grants pass at once (access.ts); anyone else is checked with a HEAD upstream
 * carrying their own credential, and gets upstream's refusal (401 challenge, 403, 404) if it
 * says no (UpstreamRefusedError). When upstream cannot be asked, earlier answers of any
 * freshness decide (UnverifiableAccessError when there are none).
 */
export async function ensureAccess(
  request: AccessRequest,
  content: CachedContent,
  deps: AccessDeps,
): Promise<void> {
  const { req, destination } = request;
  if (deps.policy(destination) === 'share') return;
  const host = formatAuthority(destination);
  const authorization = req.headers.authorization;
  const publicAge = await deps.access.publicAge({ host, name: content.name, digest: content.digest });
  const grantAge = deps.access.grantAge(host, content.name, authorization);
  if (publicAge === 'fresh' || grantAge === 'fresh') return;
  let response: UpstreamResponse;
  try {
    ({ response } = await requestFollowingRedirects(deps.upstream, {
      origin: originOf(destination),
      method: 'HEAD',
      path: `/v2/${content.name}/${content.kind}s/${content.digest}`,
      headers: wholeObjectHeaders(req),
    }));
  } catch (error) {
    if (!(error instanceof UpstreamUnavailableError) || error.tls) throw error;
    if (publicAge !== undefined || grantAge !== undefined) return;
    throw new UnverifiableAccessError();
  }
  await response.body.dump();
  if (response.statusCode >= 200 && response.statusCode < 300) {
    recordAccess(request, content.name, content.digest, deps.access);
    return;
  }
  throw UpstreamRefusedError.of(response, content.kind);
}

/**
 * Whether earlier answers let this client have `content` without asking upstream now: a fresh
 * public mark or a fresh grant (the fast path of ensureAccess, for content that upstream can
 * only be asked about by fetching it again, such as a referrers index).
 */
export async function mayServeUnasked(
  request: AccessRequest,
  content: Omit<CachedContent, 'kind'>,
  deps: Omit<AccessDeps, 'upstream'>,
): Promise<boolean> {
  const { destination } = request;
  if (deps.policy(destination) === 'share') return true;
  const host = formatAuthority(destination);
  return (
    (await deps.access.publicAge({ host, name: content.name, digest: content.digest })) === 'fresh' ||
    deps.access.grantAge(host, content.name, request.req.headers.authorization) === 'fresh'
  );
}

/** Upstream cannot be asked: what it said before, public marks of any age and grants within offlineGrace. */
export function mayServeOffline(
  request: AccessRequest,
  content: Omit<CachedContent, 'kind'>,
  deps: Omit<AccessDeps, 'upstream'>,
): Promise<boolean> {
  return servedBefore(request, content, deps, (age) => age !== undefined);
}

/**
 * Upstream refused this client the tag (401/403/404) and the registry serves stale on that
 * (serveStaleOn): only what the cache would serve this client without asking may pass, public
 * marks (of any age: the content was public) and fresh grants. A grant older than grantTtl does
 * not outweigh upstream's fresh no, and private content never turns public.
 */
export function mayServeRefused(
  request: AccessRequest,
  content: Omit<CachedContent, 'kind'>,
  deps: Omit<AccessDeps, 'upstream'>,
): Promise<boolean> {
  return servedBefore(request, content, deps, (age) => age === 'fresh');
}

/** Whether earlier answers let this client have `content`: a public mark, or a grant `grantCounts` takes. */
async function servedBefore(
  request: AccessRequest,
  content: Omit<CachedContent, 'kind'>,
  deps: Omit<AccessDeps, 'upstream'>,
  grantCounts: (age: AnswerAge) => boolean,
): Promise<boolean> {
  const { destination } = request;
  if (deps.policy(destination) === 'share') return true;
  const { access } = deps;
  const host = formatAuthority(destination);
  return (
    (await access.publicAge({ host, name: content.name, digest: content.digest })) !== undefined ||
    grantCounts(access.grantAge(host, content.name, request.req.headers.authorization))
  );
}

/** Upstream served `digest` of `name` to this request: public if it carried no real credential. */
export function recordAccess(request: AccessRequest, name: string, digest: string, access: Access): void {
  const authorization = request.req.headers.authorization;
  const host = formatAuthority(request.destination);
  if (access.isAnonymous(authorization)) access.markPublic({ host, name, digest });
  else access.grant(host, name, authorization);
}

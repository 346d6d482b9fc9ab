// Who may be served cached content, decided per request: public content and recent grants pass
// at once (access.ts); anyone else is checked upstream with a HEAD carrying their own
// credential, and gets the upstream's refusal (401 challenge, 403, 404) if it says no.
// Registries whose policy is `share` skip all of this (policy.ts).
import type { IncomingMessage } from 'node:http';
import { formatAuthority, originOf, type Destination } from '../http/destination.ts';
import { RegistryError, type RegistryErrorCode } from '../oci/errors.ts';
import type { Upstream, UpstreamResponse } from '../upstream/client.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { requestFollowingRedirects } from '../upstream/fetch.ts';
import type { Access } from './access.ts';
import type { PolicyOf } from './policy.ts';
import { wholeObjectHeaders } from './relay.ts';

export type ContentKind = 'blob' | 'manifest';

/** What a client asks to be served from the cache. */
export interface CachedContent {
  readonly kind: ContentKind;
  readonly name: string;
  readonly digest: string;
}

/**
 * Content is served from the cache only to a client that upstream would serve it to: public
 * content and fresh grants pass at once (access.ts); anyone else is checked with a HEAD upstream
 * carrying their own credential, and gets upstream's refusal (401 challenge, 403, 404) if it
 * says no. When upstream cannot be asked, earlier answers of any freshness decide.
 */
export async function ensureAccess(
  req: IncomingMessage,
  destination: Destination,
  content: CachedContent,
  deps: { readonly upstream: Upstream; readonly access: Access; readonly policy: PolicyOf },
): Promise<void> {
  if (deps.policy(destination) === 'share') return;
  const host = formatAuthority(destination);
  const authorization = req.headers.authorization;
  const publicAge = await deps.access.publicAge({ host, name: content.name, digest: content.digest });
  const grantAge = deps.access.grantAge(host, content.name, authorization);
  if (publicAge === 'fresh' || grantAge === 'fresh') return;
  const headers = wholeObjectHeaders(req);
  let response: UpstreamResponse;
  try {
    ({ response } = await requestFollowingRedirects(deps.upstream, {
      origin: originOf(destination),
      method: 'HEAD',
      path: `/v2/${content.name}/${content.kind}s/${content.digest}`,
      headers,
    }));
  } catch (error) {
    if (!(error instanceof UpstreamUnavailableError) || error.tls) throw error;
    if (publicAge !== undefined || grantAge !== undefined) return;
    throw unverifiable();
  }
  await response.body.dump();
  if (response.statusCode >= 200 && response.statusCode < 300) {
    recordAccess(req, destination, content.name, content.digest, deps.access);
    return;
  }
  throw deniedBy(response, content.kind);
}

/** Upstream cannot be asked: what it said before, public marks of any age and grants within offlineGrace. */
export async function mayServeOffline(
  deps: { readonly access: Access; readonly policy: PolicyOf },
  destination: Destination,
  content: Omit<CachedContent, 'kind'>,
  authorization: string | undefined,
): Promise<boolean> {
  if (deps.policy(destination) === 'share') return true;
  const { access } = deps;
  const host = formatAuthority(destination);
  return (
    (await access.publicAge({ host, name: content.name, digest: content.digest })) !== undefined ||
    access.grantAge(host, content.name, authorization) !== undefined
  );
}

/** Nobody can ask upstream who may read this: a client that has not proved access is refused. */
export function unverifiable(): RegistryError {
  return new RegistryError(401, 'UNAUTHORIZED', 'authentication required (upstream registry unreachable)');
}

/** Upstream served `digest` of `name` to this request: public if it carried no real credential. */
export function recordAccess(
  req: IncomingMessage,
  destination: Destination,
  name: string,
  digest: string,
  access: Access,
): void {
  const authorization = req.headers.authorization;
  const host = formatAuthority(destination);
  if (access.isAnonymous(authorization)) access.markPublic({ host, name, digest });
  else access.grant(host, name, authorization);
}

const REFUSALS: Readonly<Record<number, { code: RegistryErrorCode; message: string }>> = {
  401: { code: 'UNAUTHORIZED', message: 'authentication required' },
  403: { code: 'DENIED', message: 'requested access to the resource is denied' },
  429: { code: 'TOOMANYREQUESTS', message: 'too many requests' },
};

/** The upstream's refusal, as the wire error the client would have had from upstream itself. */
export function deniedBy(response: UpstreamResponse, kind: ContentKind): RegistryError {
  const headers: Record<string, string> = {};
  for (const name of ['www-authenticate', 'retry-after']) {
    const value = response.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const status = response.statusCode;
  const refusal =
    status === 404
      ? {
          code: kind === 'blob' ? ('BLOB_UNKNOWN' as const) : ('MANIFEST_UNKNOWN' as const),
          message: `${kind} unknown to registry`,
        }
      : (REFUSALS[status] ?? { code: 'UNKNOWN' as const, message: `upstream answered ${status}` });
  return new RegistryError(status, refusal.code, refusal.message, { headers });
}

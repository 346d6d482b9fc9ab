// The /v2/ URL grammar of the distribution spec, as routes. A path shaped like a registry
// endpoint whose repository name, digest or tag breaks the grammar is `invalid` and answered by
// the proxy itself (never relayed: traversal, encoded dots, NUL, overlong names); anything else
// that is not a registry route (token endpoints such as quay.io's /v2/auth) is `other`, relayed.
import { isDigest, isName, isTag } from '../oci/reference.ts';

export type Route =
  | { readonly kind: 'ping' }
  | { readonly kind: 'catalog' }
  | {
      readonly kind: 'manifest';
      readonly name: string;
      readonly reference: string;
      readonly byDigest: boolean;
    }
  | { readonly kind: 'blob'; readonly name: string; readonly digest: string }
  | { readonly kind: 'upload'; readonly name: string }
  | { readonly kind: 'tags'; readonly name: string }
  | { readonly kind: 'referrers'; readonly name: string; readonly digest: string }
  | { readonly kind: 'invalid'; readonly what: 'name' | 'digest' | 'tag'; readonly value: string }
  | { readonly kind: 'other' };

const OTHER: Route = { kind: 'other' };

/**
 * Text that no repository name, tag or digest may hold, anywhere in a /v2/ path: a dot segment,
 * a percent-encoding (names are lower-case alphanumerics and separators, never escaped: `%2e%2e`
 * and `%2f` are someone trying), a backslash, control characters.
 */
const NEVER_IN_V2 = /(?:^|\/)\.{1,2}(?:\/|$)|%|\\|[\x00-\x1f\x7f]/;

/** Pure: the route of a request target (origin-form path, query ignored). */
export function parseRoute(target: string): Route {
  const path = target.split('?', 1)[0] ?? '';
  if (path === '/v2/' || path === '/v2') return { kind: 'ping' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  if (!path.startsWith('/v2/')) return OTHER;
  const rest = path.slice('/v2/'.length);
  if (NEVER_IN_V2.test(rest)) return invalid('name', rest);

  const upload = /^(.+)\/blobs\/uploads\/.*$/.exec(rest);
  if (upload?.[1] !== undefined) return named(upload[1], (name) => ({ kind: 'upload', name }));

  const tags = /^(.+)\/tags\/list$/.exec(rest);
  if (tags?.[1] !== undefined) return named(tags[1], (name) => ({ kind: 'tags', name }));

  const match = /^(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(rest);
  if (!match) return OTHER;
  const [, name = '', kind, reference = ''] = match;
  if (!isName(name)) return invalid('name', name);
  if (kind === 'manifests') {
    if (isDigest(reference)) return { kind: 'manifest', name, reference, byDigest: true };
    if (isTag(reference)) return { kind: 'manifest', name, reference, byDigest: false };
    return invalid(reference.includes(':') ? 'digest' : 'tag', reference);
  }
  if (!isDigest(reference)) return invalid('digest', reference);
  return kind === 'blobs'
    ? { kind: 'blob', name, digest: reference }
    : { kind: 'referrers', name, digest: reference };
}

function named(name: string, route: (name: string) => Route): Route {
  return isName(name) ? route(name) : invalid('name', name);
}

function invalid(what: 'name' | 'digest' | 'tag', value: string): Route {
  // Enough to recognise it in an error body or a log line, never a 10,000-character echo.
  return { kind: 'invalid', what, value: value.length > 200 ? `${value.slice(0, 200)}…` : value };
}

/** Methods that change a registry: gated by `allowPush`. */
export function isWrite(method: string | undefined): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
}

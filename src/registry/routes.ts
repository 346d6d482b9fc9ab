// The /v2/ URL grammar of the distribution spec, as routes. Anything that does not parse as a
// well-formed registry route (token endpoints, other paths) is `other` and is relayed as is.
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
  | { readonly kind: 'other' };

const OTHER: Route = { kind: 'other' };

/** Pure: the route of a request target (origin-form path, query ignored). */
export function parseRoute(target: string): Route {
  const path = target.split('?', 1)[0] ?? '';
  if (path === '/v2/' || path === '/v2') return { kind: 'ping' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  if (!path.startsWith('/v2/')) return OTHER;

  const upload = /^\/v2\/(.+)\/blobs\/uploads\/.*$/.exec(path);
  if (upload?.[1] !== undefined) return isName(upload[1]) ? { kind: 'upload', name: upload[1] } : OTHER;

  const tags = /^\/v2\/(.+)\/tags\/list$/.exec(path);
  if (tags?.[1] !== undefined) return isName(tags[1]) ? { kind: 'tags', name: tags[1] } : OTHER;

  const match = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(path);
  const [, name = '', kind, reference = ''] = match ?? [];
  if (!match || !isName(name)) return OTHER;
  if (kind === 'manifests') {
    if (isDigest(reference)) return { kind: 'manifest', name, reference, byDigest: true };
    return isTag(reference) ? { kind: 'manifest', name, reference, byDigest: false } : OTHER;
  }
  if (!isDigest(reference)) return OTHER;
  return kind === 'blobs'
    ? { kind: 'blob', name, digest: reference }
    : { kind: 'referrers', name, digest: reference };
}

/** Methods that change a registry: gated by `allowPush`. */
export function isWrite(method: string | undefined): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
}

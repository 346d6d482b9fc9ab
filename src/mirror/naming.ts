// Which registry a mirror request is for, and the request as that registry's own API sees it:
// containerd's `?ns=<registry>`, a registry prefix in the path (`/v2/<registry>/<repository>/…`,
// what registries.conf locations with a namespace send), or mirror.default for bare names
// (dockerd's registry-mirrors). Pure: the server (server.ts) acts on the answer.
import { parseAuthority, type Destination } from '../http/destination.ts';

export interface NamingRules {
  /** Whether pullthrough serves this registry (its `registries` list). */
  readonly served: (host: string, port: number) => boolean;
  /** The list as configured, for the refusal's message. */
  readonly registries: readonly string[];
  /** Registry of bare names (mirror.default), or null. */
  readonly defaultRegistry: string | null;
}

export type MirrorTarget =
  /** `/v2/`: answered by the mirror itself (clients ping before they name a repository). */
  | { readonly kind: 'ping' }
  /** Hand to the registry handler: `url` is the upstream's own path and query. */
  | { readonly kind: 'upstream'; readonly destination: Destination; readonly url: string }
  /** A registry not on the list: refused without asking it anything. */
  | { readonly kind: 'denied'; readonly registry: string; readonly message: string }
  /** A bare name with no mirror.default, or a path outside /v2/. */
  | { readonly kind: 'unnamed'; readonly message: string }
  /** A registry name that is no host[:port]. */
  | { readonly kind: 'invalid'; readonly registry: string };

/** Docker Hub's API host: `docker.io` (and index.docker.io) in a name means it. */
const DOCKER_HUB = 'registry-1.docker.io';
const DOCKER_HUB_NAMES = new Set(['docker.io', 'index.docker.io', DOCKER_HUB]);

export function nameTarget(url: string, rules: NamingRules): MirrorTarget {
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt + 1);
  if (path === '/v2' || path === '/v2/') return { kind: 'ping' };
  if (!path.startsWith('/v2/')) {
    return { kind: 'unnamed', message: `${path} is not under /v2/: this listener serves the registry API` };
  }
  const { ns, rest: otherQuery } = takeNamespace(query);
  const rest = path.slice('/v2/'.length);
  const named = ns !== undefined ? { registry: ns, repository: rest } : splitPrefix(rest, rules);
  if (named === undefined) {
    return {
      kind: 'unnamed',
      message:
        'name the registry: /v2/<registry>/<repository>/… or ?ns=<registry> (mirror.default is not set)',
    };
  }
  const destination = registryDestination(named.registry);
  if (destination === undefined) return { kind: 'invalid', registry: named.registry };
  if (!rules.served(destination.host, destination.port)) {
    return {
      kind: 'denied',
      registry: named.registry,
      message: `registry ${named.registry} is not served by this mirror; it serves: ${rules.registries.join(', ')}`,
    };
  }
  let repository = named.repository;
  if (destination.host === DOCKER_HUB) repository = withLibrary(repository);
  const upstreamUrl = `/v2/${repository}${otherQuery === '' ? '' : `?${otherQuery}`}`;
  return { kind: 'upstream', destination, url: upstreamUrl };
}

/** `ns` out of a raw query, the other parameters left byte for byte as sent. */
function takeNamespace(query: string): { ns: string | undefined; rest: string } {
  let ns: string | undefined;
  const kept: string[] = [];
  for (const part of query === '' ? [] : query.split('&')) {
    const [key, value = ''] = part.split('=', 2) as [string, string?];
    if (key === 'ns') ns = safeDecode(value);
    else kept.push(part);
  }
  return { ns, rest: kept.join('&') };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // refused below as an invalid registry name
  }
}

/**
 * `/v2/<registry>/<repository>/…`: the first component names a registry when it holds a `.`
 * or a `:` or is `localhost`, the rule docker and containers/image use for image references.
 */
function splitPrefix(rest: string, rules: NamingRules): { registry: string; repository: string } | undefined {
  const slash = rest.indexOf('/');
  const first = slash === -1 ? rest : rest.slice(0, slash);
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    return { registry: first, repository: slash === -1 ? '' : rest.slice(slash + 1) };
  }
  if (rules.defaultRegistry === null) return undefined;
  return { registry: rules.defaultRegistry, repository: rest };
}

/** `host[:port]` → where to fetch it: HTTPS, 443 unless a port is given; docker.io → its API host. */
export function registryDestination(registry: string): Destination | undefined {
  const lower = registry.toLowerCase();
  if (DOCKER_HUB_NAMES.has(lower)) return { host: DOCKER_HUB, port: 443, scheme: 'https' };
  const hasPort = /:\d+$/.test(lower) && (!lower.includes('[') || lower.includes(']:'));
  return parseAuthority(hasPort ? lower : `${lower}:443`);
}

/** Docker Hub's official images live under `library/`: `alpine` is `library/alpine`. */
function withLibrary(repository: string): string {
  const match = /^(.+?)\/(manifests|blobs|tags|referrers)\//.exec(repository);
  if (!match?.[1] || match[1].includes('/')) return repository;
  return `library/${repository}`;
}

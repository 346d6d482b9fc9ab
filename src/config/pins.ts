// Pins (`cache.pin`): images eviction never removes. A pin is a reference whose repository and
// tag may hold `*` globs; it says which tags, repositories or digests are kept. Pure, no I/O.
//
//   [host[:port]/]repository[:tag | @digest]
//   registry.k8s.io/pause:*          every tag of registry.k8s.io/pause (and its digest pulls)
//   docker.io/library/postgres:16    one tag
//   postgres:16                      the same (no host: Docker Hub, one component: library/)
//   ghcr.io/org/*                    every repository under ghcr.io/org, at any depth
//   quay.io/org/app@sha256:<hex>     one manifest, by digest
//
// Hosts are matched as `registries` entries are (http/host-rules.ts): `docker.io` stands for
// Docker Hub's hosts, a host without a port means port 443, `*.example.com` matches subdomains.
// In a repository `*` matches any characters, `/` included; in a tag, any tag characters. No tag
// (or `*`) pins everything cached for the repository: its tags and the manifests pulled by
// digest from it.
import { parseAuthority } from '../http/destination.ts';
import { HostRules } from '../http/host-rules.ts';
import { isDigest, isName, isTag } from '../oci/reference.ts';

export interface Pin {
  readonly text: string;
  /** The registry as a `registries` entry: `host`, `host:port` or `*.domain[:port]`. */
  readonly registry: string;
  readonly repository: string;
  /** A tag glob; undefined when the pin holds every tag (and digest pulls) of the repository. */
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

const REGISTRY = /^(?:\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$/;
const DOCKER_HUB = new Set(['docker.io', 'registry-1.docker.io', 'index.docker.io']);

/** The parts of a pin, or undefined when it is not one (the config schema reports it). */
export function parsePin(input: string): Pin | undefined {
  const text = input.trim();
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (digest !== undefined || !isTag(tag.replaceAll('*', 'x'))) return undefined;
    if (tag === '*') tag = undefined;
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  // Docker's rule (distribution/reference normalize.go): the first component is a registry
  // when it has a `.` or a `:`, or is `localhost`.
  const hasRegistry = /[.:]/.test(first) || first === 'localhost';
  const registry = (hasRegistry ? first : 'docker.io').toLowerCase();
  let repository = hasRegistry ? rest.slice(slash + 1) : rest;
  if (
    DOCKER_HUB.has(registry.replace(/:443$/, '')) &&
    !repository.includes('/') &&
    !repository.includes('*')
  ) {
    repository = `library/${repository}`;
  }
  if (!REGISTRY.test(registry) || !isName(repository.replaceAll('*', 'x'))) return undefined;
  return { text, registry, repository, tag, digest };
}

interface CompiledPin {
  readonly hosts: HostRules<true>;
  readonly repository: RegExp;
  /** undefined: every tag and digest pull of the repository. */
  readonly tag: RegExp | undefined;
  readonly digest: string | undefined;
}

export class Pins {
  readonly #pins: readonly CompiledPin[];
  /** Digests pinned by `@digest` pins, whatever repository they were pulled from. */
  readonly digests: ReadonlySet<string>;

  /** Malformed patterns are ignored: the config schema has refused them already. */
  constructor(patterns: readonly string[]) {
    const pins = patterns.map(parsePin).filter((pin) => pin !== undefined);
    this.digests = new Set(pins.flatMap((pin) => (pin.digest === undefined ? [] : [pin.digest])));
    this.#pins = pins
      .filter((pin) => pin.digest === undefined)
      .map((pin) => ({
        hosts: new HostRules([{ pattern: pin.registry, value: true as const }]),
        repository: glob(pin.repository, '.*'),
        tag: pin.tag === undefined ? undefined : glob(pin.tag, '[\\w.-]*'),
        digest: pin.digest,
      }));
  }

  get empty(): boolean {
    return this.#pins.length === 0 && this.digests.size === 0;
  }

  /** Whether the tag `repository:tag` of `authority` (`host:port`, as cache records name it) is pinned. */
  tag(authority: string, repository: string, tag: string): boolean {
    return this.#pins.some(
      (pin) => matchesRepository(pin, authority, repository) && (pin.tag === undefined || pin.tag.test(tag)),
    );
  }

  /** Whether everything cached for the repository is pinned (a pin without a tag, or with `:*`). */
  repository(authority: string, repository: string): boolean {
    return this.#pins.some((pin) => pin.tag === undefined && matchesRepository(pin, authority, repository));
  }
}

function matchesRepository(pin: CompiledPin, authority: string, repository: string): boolean {
  const destination = parseAuthority(authority);
  if (!destination || !pin.hosts.match(destination.host, destination.port)) return false;
  return pin.repository.test(repository);
}

function glob(pattern: string, star: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join(star)}$`);
}

// Each intercepted registry's own settings, found by destination: its policy, its tag freshness
// (per registry, else the cache-wide values), and the credentials the proxy logs in with (only
// under policy `share`). Built once from the validated config; what an operator should know
// about these settings at start is returned as notices, not logged here.
import { formatAuthority, type Destination } from '../http/destination.ts';
import { HostRules } from '../http/host-rules.ts';
import type { Notice } from '../log.ts';
import { parseMirrorLocation, type MirrorEntry } from './mirrors.ts';
import { describeRefusal, refusalOf } from './repository-filter.ts';
import { DEFAULT_SERVE_STALE_ON, type Config, type RegistrySettings, type StaleCause } from './schema.ts';

export type Policy = NonNullable<RegistrySettings['policy']>;
export type Credential = Config['upstream']['credentials'][number];

/** How long a tag is trusted. */
export interface Freshness {
  /** How long a tag is served without asking upstream. */
  readonly tagTtlMs: number;
  /** How old a tag may be and still be served when upstream cannot answer. */
  readonly maxStaleMs: number;
  /** What makes a cached tag be served stale rather than upstream's answer (serveStaleOn). */
  readonly serveStaleOn: ReadonlySet<StaleCause>;
}

export class Registries {
  readonly #config: Config;
  readonly #rules: HostRules<RegistrySettings>;
  /** Each entry's mirrors, parsed once. */
  readonly #mirrors = new WeakMap<RegistrySettings, MirrorEntry[]>();

  constructor(config: Config) {
    this.#config = config;
    this.#rules = new HostRules(
      config.registries.map((registry) => ({ pattern: registry.host, value: registry })),
    );
  }

  /** The registry entry that intercepts `host:port`, if any. */
  of(host: string, port: number): RegistrySettings | undefined {
    return this.#rules.match(host, port);
  }

  readonly policy = (destination: Destination): Policy =>
    this.of(destination.host, destination.port)?.policy ?? 'verify';

  readonly freshness = (destination: Destination): Freshness => {
    const registry = this.of(destination.host, destination.port);
    return {
      tagTtlMs: registry?.tagTtl ?? this.#config.cache.tagTtl,
      maxStaleMs: registry?.maxStale ?? this.#config.cache.maxStale,
      serveStaleOn: new Set(registry?.serveStaleOn ?? DEFAULT_SERVE_STALE_ON),
    };
  };

  /**
   * Why `repository` of this destination's registry may not be served (`allow` / `deny`), in
   * words for the client and the log; undefined when it may.
   */
  readonly refusal = (destination: Destination, repository: string): string | undefined => {
    const registry = this.of(destination.host, destination.port);
    const refusal = registry && refusalOf(registry, repository);
    return refusal && registry ? describeRefusal(registry.host, repository, refusal) : undefined;
  };

  /**
   * The registry's mirrors (`registries[].mirrors`), parsed, with the name `?ns=` gives it: the
   * entry's own (`docker.io`), or `host[:port]` for a wildcard entry. Undefined: it has none.
   */
  readonly mirrors = (
    destination: Destination,
  ): { registry: string; ns: string; mirrors: MirrorEntry[] } | undefined => {
    const registry = this.of(destination.host, destination.port);
    if (!registry?.mirrors?.length) return undefined;
    let mirrors = this.#mirrors.get(registry);
    if (!mirrors) {
      mirrors = registry.mirrors.flatMap(({ host, tags, ns }) => {
        const location = parseMirrorLocation(host);
        return location ? [{ ...location, tags, ns }] : [];
      });
      this.#mirrors.set(registry, mirrors);
    }
    const port = destination.port === 443 ? '' : `:${destination.port}`;
    const ns = registry.host.startsWith('*.') ? `${destination.host}${port}` : registry.host;
    return { registry: formatAuthority(destination), ns, mirrors };
  };

  /** The configured credential the proxy logs in to `host:port` with: only under policy share. */
  readonly credential = (host: string, port: number): Credential | undefined => {
    const registry = this.of(host, port);
    if (registry?.policy !== 'share') return undefined;
    return this.#config.upstream.credentials.find((credential) => credential.host === registry.host);
  };

  /** Per-registry disk budgets (`registries[].maxSize`), for eviction. */
  budgets(): { registry: string; maxSize: number }[] {
    return this.#config.registries.flatMap((registry) =>
      registry.maxSize === undefined ? [] : [{ registry: registry.host, maxSize: registry.maxSize }],
    );
  }

  /** Policies other than the default, and credentials that no `share` registry will use. */
  notices(): Notice[] {
    const { registries, upstream } = this.#config;
    const notices: Notice[] = [];
    for (const registry of registries) {
      if (registry.policy === 'share' || registry.policy === 'no-cache') {
        notices.push({
          level: 'info',
          fields: { host: registry.host, policy: registry.policy },
          message: 'registry policy',
        });
      }
      notices.push(...mirrorNotices(registry));
    }
    for (const credential of upstream.credentials) {
      if (registries.find((r) => r.host === credential.host)?.policy !== 'share') {
        notices.push({
          level: 'warn',
          fields: { host: credential.host },
          message: 'credentials configured for a registry whose policy is not share: they are not used',
        });
      }
    }
    return notices;
  }
}

/**
 * A registry's mirrors, and a warning for a mirror trusted with tags over plain HTTP: anyone on
 * the path may then choose what a tag names (among digests the registry confirms, under verify).
 */
function mirrorNotices(registry: RegistrySettings): Notice[] {
  const mirrors = registry.mirrors ?? [];
  if (mirrors.length === 0) return [];
  const notices: Notice[] = [
    {
      level: 'info',
      fields: { host: registry.host, mirrors: mirrors.map((m) => (m.tags ? `${m.host} (tags)` : m.host)) },
      message: 'registry mirrors',
    },
  ];
  for (const mirror of mirrors) {
    if (mirror.tags && /^http:\/\//i.test(mirror.host)) {
      notices.push({
        level: 'warn',
        fields: { host: registry.host, mirror: mirror.host },
        message: 'mirror resolves tags over plain HTTP: the network path can change what a tag names',
      });
    }
  }
  return notices;
}

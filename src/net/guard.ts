// Where the proxy may open connections on someone's behalf. Names are resolved here and every
// resolved address is checked before a socket is opened to exactly that address, so neither a
// name that resolves to a refused network nor a DNS answer that changes between check and
// connect (rebinding) gets through. Refused by default: link-local and cloud metadata ranges
// (schema.ts DEFAULT_DENY_NETWORKS), and loopback unless the client is itself on loopback.
import dns from 'node:dns/promises';
import net from 'node:net';
import { isLoopback, type NetworkList } from './networks.ts';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Every address of a name, in the resolver's order. Tests inject one; the default is the OS's. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (host) =>
  (await dns.lookup(host, { all: true, order: 'verbatim' })).map(({ address, family }) => ({
    address,
    family: family === 6 ? 6 : 4,
  }));

/** The OS's IPv4 addresses of a name only (proxy.ipv6: false), for hosts without IPv6 routes. */
export const ipv4Resolver: Resolver = async (host) =>
  (await dns.lookup(host, { all: true, family: 4 })).map(({ address }) => ({ address, family: 4 }));

/** The destination may not be reached through this proxy; `reason` is safe to show the client. */
export class DestinationRefusedError extends Error {
  override readonly name = 'DestinationRefusedError';
  readonly reason: string;

  constructor(host: string, reason: string) {
    super(`${host}: ${reason}`);
    this.reason = reason;
  }
}

export interface GuardOptions {
  readonly deny: NetworkList;
  readonly resolve?: Resolver;
}

export class DestinationGuard {
  readonly #deny: NetworkList;
  readonly #resolve: Resolver;

  constructor(options: GuardOptions) {
    this.#deny = options.deny;
    this.#resolve = options.resolve ?? systemResolver;
  }

  /**
   * The addresses of `host` that may be connected to, in order. Throws DestinationRefusedError
   * when there are none (all refused), and the resolver's own error when the name does not resolve.
   * `allowLoopback`: loopback destinations pass (the proxy's own services are reachable only by
   * clients that could reach them anyway).
   */
  async addresses(host: string, options: { allowLoopback: boolean }): Promise<ResolvedAddress[]> {
    const version = net.isIP(host);
    const resolved: ResolvedAddress[] =
      version === 0 ? await this.#resolve(host) : [{ address: host, family: version === 6 ? 6 : 4 }];
    const allowed = resolved.filter(
      ({ address }) => !this.#deny.has(address) && (options.allowLoopback || !isLoopback(address)),
    );
    if (allowed.length > 0) return allowed;
    const first = resolved[0]?.address;
    if (first === undefined) throw new DestinationRefusedError(host, 'no address');
    const why = this.#deny.has(first) ? 'a refused network (proxy.denyNetworks)' : 'loopback';
    throw new DestinationRefusedError(host, `resolves to ${first}, ${why}`);
  }
}

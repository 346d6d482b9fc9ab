// The mirror chain of a registry (`registries[].mirrors`, issue 19): asking its mirrors in order,
// anonymously, for what may come from anywhere (blobs and manifests by digest, checked against
// their digest by the caller) or for a tag (only at mirrors with `tags`). A mirror that cannot
// answer (no connection, timeout, TLS, 5xx, 429) or sent wrong bytes is skipped with a back-off
// (mirror-backoff.ts); 404 and other refusals only skip it for this request. Who may be served
// the content is not decided here: the registry's own answers decide that (access/).
import { randomUUID } from 'node:crypto';
import type { Destination } from '../http/destination.ts';
import { DestinationRefusedError } from '../net/guard.ts';
import type { Logger } from '../log.ts';
import type { Upstream, UpstreamResponse } from './client.ts';
import { UpstreamUnavailableError } from './errors.ts';
import { requestFollowingRedirects } from './fetch.ts';
import { Backoff } from './mirror-backoff.ts';
import { MirrorTokens } from './mirror-tokens.ts';

/** One mirror, as config/mirrors.ts parses it. */
export interface MirrorSource {
  /** `https://host[:port]` or `http://host[:port]`. */
  readonly origin: string;
  /** `host:port`, for logs and metrics. */
  readonly name: string;
  /** Put before the repository in paths; empty: none. */
  readonly prefix: string;
  /** Tags may be resolved here. */
  readonly tags: boolean;
  /** Send `?ns=<registry>`. */
  readonly ns: boolean;
}

/** A registry's mirrors, in order. */
export interface MirrorChain {
  /** `host:port` of the registry, as logs and metrics name it. */
  readonly registry: string;
  /** The registry's name for `?ns=` (`docker.io`, `registry.example:5000`). */
  readonly ns: string;
  readonly mirrors: readonly MirrorSource[];
}

/** Why a mirror was skipped: also the `reason` label of the failures metric. */
export type MirrorFailure =
  | 'unreachable'
  | 'timeout'
  | 'tls'
  | '5xx'
  | '429'
  | 'denied'
  | 'digest'
  | 'body'
  /** A tag named a digest the registry does not have in that repository. */
  | 'tag';

/** Failures about one request, not the mirror's health: no back-off. */
const PER_REQUEST: ReadonlySet<MirrorFailure> = new Set(['denied', 'tag']);

/** What a source was asked for. */
export type SourceKind = 'blob' | 'manifest' | 'tag';

/**
 * A mirror holds what it serves, or fetches it at once: one that takes longer than this to start
 * answering is skipped (a registry gets upstream.headersTimeout, minutes, for a pushed blob).
 */
const MIRROR_HEADERS_TIMEOUT_MS = 30_000;

export interface MirrorsOptions {
  /** The mirror chain of the registry at `destination`; undefined when it has none. */
  readonly chainOf: (destination: Destination) => MirrorChain | undefined;
  readonly now: () => number;
  readonly log: Logger;
  /** Skipped this long after a first failure (doubling up to `maxBackoffMs`). */
  readonly firstBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Every failure and every fetch a source served, for the metrics. */
  readonly onFailure?: (registry: string, mirror: string, reason: MirrorFailure) => void;
  readonly onServed?: (registry: string, source: string, kind: SourceKind) => void;
}

/** What a mirror's request is: the registry's own path (`/v2/<name>/…`) and the client's Accept. */
export interface MirrorAsk {
  readonly method: 'GET' | 'HEAD';
  readonly path: string;
  readonly accept?: string | string[] | undefined;
  readonly kind: SourceKind;
  /** The client request's own Via, passed on so that a chain of proxies can see a loop. */
  readonly via?: string | string[] | undefined;
}

/** What the caller made of a mirror's answer: kept, or skipped (a `failure` backs the mirror off). */
export type Taken<T> = { readonly value: T } | { readonly failure?: MirrorFailure };

export class Mirrors {
  readonly #upstream: Upstream;
  readonly #options: MirrorsOptions;
  readonly #backoff: Backoff;
  readonly #tokens = new MirrorTokens();
  /** This process in Via (RFC 9110 §7.6.3), unique per start: how it knows its own requests. */
  readonly #via = `1.1 pullthrough-${randomUUID().slice(0, 8)}`;

  constructor(upstream: Upstream, options: MirrorsOptions) {
    this.#upstream = upstream;
    this.#options = options;
    this.#backoff = new Backoff({
      now: options.now,
      firstMs: options.firstBackoffMs ?? 10_000,
      maxMs: options.maxBackoffMs ?? 300_000,
    });
  }

  /**
   * The request came from this process through a mirror (its Via names us): mirrors that point
   * back at this proxy, directly or through others. Answered without fills or mirrors, so the
   * loop ends and never waits on the fill that asked (registry/handler.ts).
   */
  looped(via: string | string[] | undefined): boolean {
    return via !== undefined && [via].flat().some((value) => value.includes(this.#via));
  }

  /** The mirror chain of the registry at `destination`, if it has one. */
  chainOf(destination: Destination): MirrorChain | undefined {
    return this.#options.chainOf(destination);
  }

  /**
   * Asks each usable mirror in turn (only those with `tags` for a tag) until `take` keeps an
   * answer; undefined when none did. `take` must consume or destroy the body of what it skips.
   */
  async first<T>(
    chain: MirrorChain,
    ask: MirrorAsk,
    take: (response: UpstreamResponse, mirror: MirrorSource) => Promise<Taken<T>>,
  ): Promise<{ readonly value: T; readonly mirror: MirrorSource } | undefined> {
    for (const mirror of chain.mirrors) {
      if (ask.kind === 'tag' && !mirror.tags) continue;
      if (!this.#backoff.available(mirror.origin)) continue;
      const response = await this.#ask(chain, mirror, ask);
      if (response === undefined) continue;
      const failure = statusFailure(response.statusCode);
      // A 404 or a refusal is an answer too: the mirror is up, it just does not serve this.
      if (failure === undefined || failure === 'denied') this.#answered(chain, mirror);
      if (failure !== undefined || response.statusCode < 200 || response.statusCode >= 300) {
        await response.body.dump();
        if (failure !== undefined) this.failed(chain, mirror, failure);
        continue;
      }
      const taken = await take(response, mirror);
      if ('value' in taken) return { value: taken.value, mirror };
      if (taken.failure !== undefined) this.failed(chain, mirror, taken.failure);
    }
    return undefined;
  }

  /** A mirror failed (here, or later: wrong bytes at the end of a streamed blob). */
  failed(chain: MirrorChain, mirror: MirrorSource, reason: MirrorFailure): void {
    this.#options.onFailure?.(chain.registry, mirror.name, reason);
    // A refusal (a private repository there) or a lagging tag is about this request only.
    if (PER_REQUEST.has(reason)) return;
    const { backoffMs, wasUp } = this.#backoff.failed(mirror.origin);
    if (wasUp) {
      this.#options.log.warn(
        { registry: chain.registry, mirror: mirror.name, reason, backoffMs },
        'mirror failing: skipped for a while',
      );
    }
  }

  /** `source` (a mirror, or the registry itself) served what was asked. */
  served(chain: MirrorChain, source: MirrorSource | 'registry', kind: SourceKind): void {
    this.#options.onServed?.(chain.registry, source === 'registry' ? 'registry' : source.name, kind);
  }

  #answered(chain: MirrorChain, mirror: MirrorSource): void {
    if (this.#backoff.succeeded(mirror.origin)) {
      this.#options.log.info({ registry: chain.registry, mirror: mirror.name }, 'mirror answering again');
    }
  }

  /**
   * The request, anonymous: of the client's headers only Accept goes to a mirror, with an
   * anonymous token when the mirror's challenge asks for one (mirror-tokens.ts).
   */
  async #ask(
    chain: MirrorChain,
    mirror: MirrorSource,
    ask: MirrorAsk,
  ): Promise<UpstreamResponse | undefined> {
    const path = mirrorPath(chain, mirror, ask.path);
    const headers: Record<string, string | string[]> = { via: [ask.via ?? [], this.#via].flat().join(', ') };
    if (ask.accept !== undefined) headers['accept'] = ask.accept;
    const send = async (authorization: string | undefined) => {
      const { response } = await requestFollowingRedirects(this.#upstream, {
        origin: mirror.origin,
        method: ask.method,
        path,
        headers: authorization === undefined ? headers : { ...headers, authorization },
        headersTimeoutMs: MIRROR_HEADERS_TIMEOUT_MS,
        bulk: ask.kind === 'blob' && ask.method === 'GET',
      });
      return response;
    };
    try {
      const response = await send(this.#tokens.cached(mirror.origin, path));
      const challenge = response.headers['www-authenticate'];
      if (response.statusCode !== 401 || typeof challenge !== 'string') return response;
      const token = await this.#tokens.anonymous(mirror.origin, path, challenge, (request) =>
        this.#upstream.request(request),
      );
      if (token === undefined) return response;
      await response.body.dump();
      return await send(token);
    } catch (error) {
      if (error instanceof UpstreamUnavailableError) {
        this.failed(chain, mirror, error.timeout ? 'timeout' : error.tls ? 'tls' : 'unreachable');
        return undefined;
      }
      if (error instanceof DestinationRefusedError) {
        this.failed(chain, mirror, 'unreachable');
        return undefined;
      }
      throw error;
    }
  }
}

/** A registry path (`/v2/<name>/…`) as `mirror` serves it: its prefix, and `?ns=` when it reads one. */
export function mirrorPath(chain: MirrorChain, mirror: MirrorSource, path: string): string {
  const rest = path.replace(/^\/v2\//, '');
  const prefixed = mirror.prefix === '' ? `/v2/${rest}` : `/v2/${mirror.prefix}/${rest}`;
  return mirror.ns ? `${prefixed}?ns=${chain.ns}` : prefixed;
}

/** The failure a status means; undefined for success, and for answers about this one request (404). */
function statusFailure(status: number): MirrorFailure | undefined {
  if (status >= 500) return '5xx';
  if (status === 429) return '429';
  if (status === 401 || status === 403) return 'denied';
  return undefined;
}

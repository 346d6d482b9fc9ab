// What every registry endpoint works with: the exchange (one client request, its response, its
// destination and what happened so far) and the dependencies the app wires in once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Access } from '../access/access.ts';
import type { PolicyOf } from '../access/policy.ts';
import type { BlobStore } from '../cache/blobs.ts';
import type { CacheBook } from '../cache/book.ts';
import type { Fills } from '../cache/fills.ts';
import type { ManifestStore } from '../cache/manifests.ts';
import type { Freshness } from '../config/registries.ts';
import type { Destination } from '../http/destination.ts';
import type { Logger } from '../log.ts';
import type { Upstream } from '../upstream/client.ts';
import type { Challenges } from './challenges.ts';
import type { Mirrors } from '../upstream/mirrors.ts';
import type { CacheStatus, Outcome } from './outcome.ts';

/** How a request reached the proxy: as an HTTPS_PROXY client, or at the mirror listener. */
export type Mode = 'proxy' | 'mirror';

/** One client request being answered. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Where the client was going: the CONNECT authority, never the Host header. */
  readonly destination: Destination;
  /** `host:port` of the destination, as logs and cache records name registries. */
  readonly host: string;
  readonly mode: Mode;
  readonly outcome: Outcome;
}

export interface RegistryDeps {
  readonly upstream: Upstream;
  /** Registries' mirror chains (registries[].mirrors); absent: no registry has mirrors. */
  readonly mirrors?: Mirrors;
  readonly store: BlobStore;
  readonly fills: Fills;
  readonly manifests: ManifestStore;
  /** What is read, used, stored and tagged, and whether a new fill may be stored (eviction). */
  readonly book: CacheBook;
  readonly access: Access;
  readonly policy: PolicyOf;
  /** Tag freshness for a destination (per registry, falling back to the cache-wide settings). */
  readonly freshness: (destination: Destination) => Freshness;
  /** Whether the proxy intercepts `host:port` (a token realm it can answer for offline). */
  readonly intercepts?: (host: string, port: number) => boolean;
  /** Upstream's remembered challenges, replayed while it is unreachable (the handler makes it). */
  readonly challenges?: Challenges;
  /** Why this repository may not be served here (registries[].allow/deny); undefined: it may. */
  readonly repositoryRefusal?: (destination: Destination, repository: string) => string | undefined;
  readonly maxManifestSize: number;
  readonly allowPush: boolean;
  readonly now: () => number;
  readonly log: Logger;
  /** Called once per failure to write the cache, so the cause is logged once, not per request. */
  readonly cacheWriteFailed: (error: unknown) => void;
  /** Told of every request once its response is over (metrics); what the completion line says. */
  readonly onCompletion?: (completion: Completion) => void;
}

/** One request as its completion line reports it, with bounded values only (no repository). */
export interface Completion {
  /** `host:port` of the intercepted registry. */
  readonly host: string;
  readonly mode: Mode;
  readonly kind: 'manifest' | 'blob' | 'other';
  readonly cache: CacheStatus;
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
  /** It joined a fill another request started. */
  readonly shared: boolean;
}

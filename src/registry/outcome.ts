// What one request did, filled in while it runs (the cache decision before the body is sent,
// bytes as they flow), so the completion log line is right even when the client leaves early.

/** What the cache did: also the `X-Cache` header, upper-cased. */
export type CacheStatus = 'hit' | 'miss' | 'revalidated' | 'stale' | 'bypass';

export interface Outcome {
  cache: CacheStatus;
  /** Body bytes written to the client so far. */
  bytes: number;
  /** This request joined a fill that another request started. */
  shared: boolean;
  /** The mirror (`host:port`) that sent what was fetched, when not the registry (issue 19). */
  source?: string | undefined;
}

export function newOutcome(): Outcome {
  return { cache: 'bypass', bytes: 0, shared: false };
}

// Fills in progress: one upstream fetch per digest at a time, shared by every client that asks
// while it runs (fill.ts has how one fill streams, stores and verifies). Starting a fill never
// fails because of the disk: when the temp file cannot be opened, the fill relays from memory,
// and waiters can join it all the same.
import { open } from 'node:fs/promises';
import { parseDigest } from '../oci/digest.ts';
import type { BlobStore, BlobWriter } from './blobs.ts';
import { asError, type NotAdmittedError, type WriteFailureListener } from './errors.ts';
import { Fill, type FillSource, type FillTarget } from './fill.ts';

export type { Fill, FillResult, FillSource, FillState } from './fill.ts';

export interface FillsOptions {
  /** Told of every write the cache could not make (the fill went on uncached). */
  readonly onWriteFailure?: WriteFailureListener;
}

/** How a fill starts. */
export interface StartOptions {
  /** Set when the cache will not store this fill (eviction's admission): it relays, verified. */
  readonly notStored?: NotAdmittedError;
  /** Whether the fill puts the blob in a store shared between replicas (BeginOptions.shares). */
  readonly shares?: () => boolean;
}

/**
 * How the client asking for a digest would fetch it from upstream itself, from byte `start` on
 * (with its own credentials). Local fills never need it; a fill streamed from another replica
 * (cluster/) uses it to take the fetch over when that replica dies.
 */
export type Refetch = (start: number) => Promise<AsyncIterable<Buffer>>;

/** A caller's exclusive right to start the fill of one digest; joiners wait on it. */
export interface Claim {
  /** Starts the fill (see Fills.start); joiners receive it. */
  start(source: FillSource, options?: StartOptions): Promise<Fill>;
  /** Gives the claim up without a fill (upstream said no). */
  release(): void;
}

/** The fills running now, by digest, and the claims about to start one. */
export class Fills {
  /** Running fills that a new reader can still join from byte 0. */
  readonly #joinable = new Map<string, Fill>();
  /** Every running fill, joinable or not (idle() waits for them all). */
  readonly #running = new Set<Fill>();
  readonly #claims = new Map<string, Promise<Fill | undefined>>();
  readonly #store: BlobStore;
  readonly #onWriteFailure: WriteFailureListener | undefined;
  #idle: Array<() => void> = [];

  constructor(store: BlobStore, options: FillsOptions = {}) {
    this.#store = store;
    this.#onWriteFailure = options.onWriteFailure;
  }

  get size(): number {
    return this.#running.size;
  }

  /** Every fill running now (the dashboard shows each with its progress). */
  running(): readonly Fill[] {
    return [...this.#running];
  }

  /**
   * The running fill of `digest`, or a promise of the one being started (undefined if that
   * start fails), or undefined when nobody is fetching it. Synchronous, so that a caller can
   * check and then claim without another request slipping in between. A caller that awaits
   * anything before opening the fill checks `fill.joinable` again right before. A clustered
   * Fills (cluster/fills.ts) may answer a promise even when nobody here fetches: undefined from
   * it means the caller is the one to fetch, and claims at once (before a new turn of the loop).
   */
  lookup(digest: string, _refetch?: Refetch): Fill | Promise<Fill | undefined> | undefined {
    return this.#joinable.get(digest) ?? this.#claims.get(digest);
  }

  /** Claims `digest`: until start() or release(), lookup() hands joiners a promise. */
  claim(digest: string): Claim {
    let settle: (fill: Fill | undefined) => void = () => undefined;
    const promise = new Promise<Fill | undefined>((resolve) => (settle = resolve));
    this.#claims.set(digest, promise);
    let done = false;
    const finish = (fill: Fill | undefined) => {
      if (done) return;
      done = true;
      if (this.#claims.get(digest) === promise) this.#claims.delete(digest);
      settle(fill);
    };
    return {
      start: async (source, options = {}) => {
        try {
          const fill = await this.#start(digest, source, options);
          finish(fill);
          return fill;
        } catch (error) {
          finish(undefined);
          throw error;
        }
      },
      release: () => finish(undefined),
    };
  }

  /**
   * Starts filling `digest` from `source`: into a temp file, or, when the disk refuses one, as a
   * relay from memory (`fill.caching` is false). Rejects only for a malformed digest.
   */
  async #start(digest: string, source: FillSource, options: StartOptions): Promise<Fill> {
    const parsed = parseDigest(digest);
    if (!parsed) throw new TypeError(`not a supported digest: ${JSON.stringify(digest).slice(0, 100)}`);
    const target = options.notStored
      ? { cause: options.notStored }
      : await this.#target(digest, options.shares);
    const fill: Fill = new Fill(parsed, source, target, {
      retired: () => {
        if (this.#joinable.get(digest) === fill) this.#joinable.delete(digest);
      },
      ended: () => {
        this.#running.delete(fill);
        if (this.#running.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
      },
      writeFailed: (error, path) => this.#onWriteFailure?.(error, { path, digest }),
    });
    this.#joinable.set(digest, fill);
    this.#running.add(fill);
    return fill;
  }

  /** The temp file, written by the store's writer and read through a handle of our own. */
  async #target(digest: string, shares: (() => boolean) | undefined): Promise<FillTarget> {
    let writer: BlobWriter | undefined;
    try {
      writer = await this.#store.begin(digest, { callerVerifies: true, ...(shares ? { shares } : {}) });
      return { writer, file: await open(writer.tempPath, 'r') };
    } catch (error) {
      await writer?.abort();
      const cause = asError(error);
      const path = writer?.tempPath ?? (cause as NodeJS.ErrnoException).path ?? '';
      this.#onWriteFailure?.(cause, { path, digest });
      return { cause };
    }
  }

  /** Resolves when no fill is running (tests and shutdown wait on it; no polling). */
  idle(): Promise<void> {
    if (this.#running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

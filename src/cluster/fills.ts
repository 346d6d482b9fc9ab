// Fills across replicas: the local Fills (cache/fills.ts), asked first, and behind it the fill
// lease (leases.ts). The replica holding a digest's lease is the only one that fetches it from
// upstream; on every other replica, the first reader starts a local fill whose source is the
// holder's stream (remote.ts), so that every reader here joins it as it would a local fill:
// headers at once, bytes as they arrive, verified here too, kept locally but not put in a shared
// store (the holder does that). When that stream breaks (the holder died), the fill goes on from
// where it was: from the next holder, or, once the dead holder's lease expires, from upstream
// with this reader's own request (`Refetch`), holding the lease, and then it stores the blob.
import { setTimeout as delay } from 'node:timers/promises';
import type { BlobStore } from '../cache/blobs.ts';
import { NotAdmittedError } from '../cache/errors.ts';
import { Fills, type Claim, type Fill, type FillsOptions, type Refetch } from '../cache/fills.ts';
import type { Logger } from '../log.ts';
import { parseDigest } from '../oci/digest.ts';
import type { Lease, Leases } from './leases.ts';
import type { Remote, RemoteBody } from './remote.ts';

export interface ClusterFillsOptions extends FillsOptions {
  readonly leases: Leases;
  readonly remote: Remote;
  readonly log: Logger;
}

/** What a reader should do about a digest nobody here fetches. */
type Found =
  /** Fetch it from upstream (holding `lease`, or none when Redis is down). */
  | { readonly kind: 'fetch'; readonly lease: Lease | undefined }
  /** Read it from the replica that fetches it, or from the store another replica published it to. */
  | { readonly kind: 'remote' | 'stored'; readonly from: RemoteBody };

/** What a fill streamed from another replica took over from it, once that one broke off. */
interface Taken {
  /** The fill lease, released when the fill ends. */
  lease?: Lease;
  /** Set once the fill goes on from upstream itself: it then stores what it fetched. */
  fetching: boolean;
}

export class ClusterFills extends Fills {
  readonly #store: BlobStore;
  readonly #leases: Leases;
  readonly #remote: Remote;
  readonly #log: Logger;
  /** Claims handed to the reader that is to fetch (its claim() takes them). */
  readonly #handed = new Map<string, Claim>();

  constructor(store: BlobStore, options: ClusterFillsOptions) {
    super(store, options);
    this.#store = store;
    this.#leases = options.leases;
    this.#remote = options.remote;
    this.#log = options.log;
  }

  /** The fill of `digest` running on this replica, without asking the cluster (endpoint.ts). */
  local(digest: string): Fill | Promise<Fill | undefined> | undefined {
    return super.lookup(digest);
  }

  /**
   * A fill here, or else the cluster's answer: a local fill streamed from the holder (or from the
   * store), or undefined when this caller is to fetch from upstream (then it claims at once).
   * The local claim is taken now, synchronously, so that readers arriving meanwhile join it.
   */
  override lookup(digest: string, refetch?: Refetch): Fill | Promise<Fill | undefined> | undefined {
    const running = super.lookup(digest);
    if (running !== undefined || parseDigest(digest) === undefined) return running;
    return this.#coordinate(digest, super.claim(digest), refetch);
  }

  /** The claim lookup() handed over (released with its lease), or a local one. */
  override claim(digest: string): Claim {
    const handed = this.#handed.get(digest);
    if (!handed) return super.claim(digest);
    this.#handed.delete(digest);
    return handed;
  }

  async #coordinate(digest: string, claim: Claim, refetch: Refetch | undefined): Promise<Fill | undefined> {
    let found: Found;
    try {
      found = await this.#find(digest, 0);
    } catch (error) {
      this.#log.warn({ digest, err: (error as Error).message }, 'cluster lookup failed: fetching here');
      found = { kind: 'fetch', lease: undefined };
    }
    if (found.kind === 'fetch') {
      this.#hand(digest, claim, found.lease);
      return undefined;
    }
    const { from } = found;
    const taken: Taken = { fetching: false };
    const body = this.#resumable(digest, from.body, refetch, taken);
    try {
      // Read from the store: verified on the way, not written again. Streamed from the holder:
      // kept here (readers join it, a front tier keeps it), stored by the holder, not by us
      // unless we take its fetch over (a bucket then receives each blob once, not per replica).
      const options =
        found.kind === 'stored'
          ? { notStored: new NotAdmittedError('already stored') }
          : { shares: () => taken.fetching };
      const fill = await claim.start({ body, size: from.size }, options);
      void fill.settled.catch(() => undefined).finally(() => taken.lease?.release());
      return fill;
    } catch (error) {
      taken.lease?.release();
      throw error;
    }
  }

  /**
   * The claim goes to the reader that resolved undefined, with the lease released when its fill
   * ends. A reader that does not claim in this turn (a HEAD, relayed upstream) gives both back.
   */
  #hand(digest: string, claim: Claim, lease: Lease | undefined): void {
    const handed: Claim = {
      start: async (source, options) => {
        try {
          const fill = await claim.start(source, options);
          void fill.settled.catch(() => undefined).finally(() => lease?.release());
          return fill;
        } catch (error) {
          lease?.release();
          throw error;
        }
      },
      release: () => {
        claim.release();
        lease?.release();
      },
    };
    this.#handed.set(digest, handed);
    setImmediate(() => {
      if (this.#handed.get(digest) !== handed) return;
      this.#handed.delete(digest);
      handed.release();
    });
  }

  /**
   * Who has the bytes of `digest` from `offset` on: the lease holder (waited for while it is
   * unreachable, until its lease expires), the store, or nobody (we fetch, holding the lease).
   */
  async #find(digest: string, offset: number): Promise<Found> {
    const ttl = this.#leases.ttlMs;
    const deadline = Date.now() + 3 * ttl + 10_000;
    for (;;) {
      const taken = await this.#leases.take(digest);
      if (taken.kind !== 'theirs') {
        const lease = taken.kind === 'ours' ? taken.lease : undefined;
        // Published between the caller's look at the store and the lease: no second fetch.
        const stored = await this.#fromStore(digest, offset);
        if (!stored) return { kind: 'fetch', lease };
        lease?.release();
        return { kind: 'stored', from: stored };
      }
      const remote = await this.#remote.open(taken.holder, digest, offset);
      if (remote) return { kind: 'remote', from: remote };
      const stored = await this.#fromStore(digest, offset);
      if (stored) return { kind: 'stored', from: stored };
      // The holder is not answering (dead, or about to start): its lease expires if it is gone.
      if (Date.now() > deadline) return { kind: 'fetch', lease: undefined };
      await delay(Math.min(ttl / 4, 500));
    }
  }

  async #fromStore(digest: string, offset: number): Promise<RemoteBody | undefined> {
    const stored = await this.#store.stat(digest).catch(() => undefined);
    if (!stored || offset > stored.size) return undefined;
    const source = await this.#store.open(digest, { start: offset, end: stored.size - 1 });
    return { body: readAll(source), size: stored.size };
  }

  /**
   * The bytes from `first`, and when it breaks, from whoever has them next (find()): the stream
   * goes on at the byte it stopped at, or fails, so a truncated copy never passes for whole.
   */
  async *#resumable(
    digest: string,
    first: AsyncIterable<Buffer>,
    refetch: Refetch | undefined,
    taken: Taken,
  ): AsyncGenerator<Buffer> {
    let offset = 0;
    let body = first;
    for (;;) {
      try {
        for await (const chunk of body) {
          offset += chunk.length;
          yield chunk;
        }
        return;
      } catch (error) {
        this.#log.warn(
          { digest, offset, err: (error as Error).message },
          'cluster fill stream broke: resuming',
        );
        const found = await this.#find(digest, offset);
        if (found.kind !== 'fetch') body = found.from.body;
        else if (!refetch) throw error;
        else {
          if (found.lease) taken.lease = found.lease;
          // Nobody else fetches it now: the blob reaches a shared store only if this fill puts it there.
          taken.fetching = true;
          this.#log.info({ digest, offset }, 'cluster fill taken over: continuing from upstream');
          body = await refetch(offset);
        }
      }
    }
  }
}

async function* readAll(source: {
  read(buffer: Buffer): Promise<number>;
  close(): Promise<void>;
}): AsyncGenerator<Buffer> {
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(256 * 1024);
      const count = await source.read(buffer);
      if (count === 0) return;
      yield buffer.subarray(0, count);
    }
  } finally {
    await source.close();
  }
}

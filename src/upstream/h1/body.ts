// The body of a response read by the own blob reader (exchange.ts). Two ways to take it, chosen by
// the first use: pushTo(sink), the hot path, hands each view of the socket's reused buffer to a
// sink that copies or hashes it at once (no buffer made per TLS record); or the ordinary Readable
// stream every other reader uses (relayed error bodies, dump()), which copies each view.
import { Readable } from 'node:stream';

/** Where pushTo() delivers: `write` must be done with the view when it returns. */
export interface BodySink {
  write(view: Buffer): void;
  /** Undefined to go on reading, or a promise that settles once the sink has room again. */
  room(): Promise<void> | undefined;
  /**
   * Memory of the sink's own that the next socket read may fill, so that a view written later may
   * already be where the sink keeps it; undefined for the socket's own buffer. Each call takes
   * back the memory lent by the call before.
   */
  space?(): Buffer | undefined;
}

/** What the body asks of the connection that carries it. */
export interface BodyFlow {
  /** Reading from the socket stops (advisory: a few more views may still arrive). */
  pause(): void;
  resume(): void;
  /** Gives up on the response: the connection is destroyed. */
  abort(error: Error): void;
}

const noop = (): void => undefined;

/** Bytes dump() reads to keep a connection; undici reads 128 KiB. */
const DUMP_LIMIT = 128 * 1024;

export class UpstreamBody extends Readable {
  readonly #flow: BodyFlow;
  #sink: BodySink | undefined;
  #waiting = false;
  #ended = false;
  #failure: Error | undefined;
  #settle: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(flow: BodyFlow) {
    // One view is at most one socket read; a few of them queued are enough for a relay.
    super({ highWaterMark: 64 * 1024 });
    this.#flow = flow;
  }

  /**
   * Delivers the rest of the body to `sink` as views of a reused buffer; settles when the body
   * has ended (or failed). Once called, the body is no longer a readable stream.
   */
  pushTo(sink: BodySink): Promise<void> {
    if (this.#sink || this.readableDidRead || this.readableFlowing !== null)
      throw new Error('the body is already being read');
    this.#sink = sink;
    // Bytes that came with the head, before anyone asked for them, wait in the stream's buffer.
    for (let chunk = super.read() as Buffer | null; chunk !== null; chunk = super.read() as Buffer | null)
      sink.write(chunk);
    return new Promise<void>((resolve, reject) => {
      if (this.#failure) reject(this.#failure);
      else if (this.#ended) resolve();
      else {
        this.#settle = { resolve, reject };
        this.#flow.resume();
      }
    });
  }

  /**
   * Reads the rest and discards it, as undici's dump() does, for bodies nobody wants: a small one
   * (a redirect's, an error's) to its end, so that the connection carries the next request (a
   * registry's 307 to its CDN comes before every blob); a larger one closes the connection.
   */
  dump(): Promise<void> {
    if (this.#ended || this.destroyed) return Promise.resolve();
    if (this.#sink || this.readableDidRead || this.readableFlowing !== null) {
      this.destroy();
      return Promise.resolve();
    }
    let left = DUMP_LIMIT;
    const discard = {
      write: (view: Buffer) => {
        left -= view.length;
        if (left < 0) this.destroy();
      },
      room: () => undefined,
    };
    return this.pushTo(discard).catch(() => undefined);
  }

  /** Where the next socket read may land (BodySink.space), or undefined for the socket's buffer. */
  space(): Buffer | undefined {
    return this.#ended || this.#failure ? undefined : this.#sink?.space?.();
  }

  /** From the exchange: body bytes, a view valid until this call returns. */
  deliver(view: Buffer): void {
    const sink = this.#sink;
    if (sink) {
      sink.write(view);
      if (this.#waiting) return;
      const room = sink.room();
      if (room === undefined) return;
      this.#waiting = true;
      this.#flow.pause();
      room.then(() => {
        this.#waiting = false;
        if (!this.#ended && !this.#failure) this.#flow.resume();
      }, noop);
    } else if (!this.push(Buffer.from(view))) {
      this.#flow.pause();
    }
  }

  /** From the exchange: the body ended whole. */
  finish(): void {
    this.#ended = true;
    if (this.#sink) this.#settle?.resolve();
    else this.push(null);
  }

  /** From the exchange: the body cannot end whole (connection lost, bad framing, timeout). */
  fail(error: Error): void {
    if (this.#ended || this.#failure) return;
    this.#failure = error;
    if (this.#sink) this.#settle?.reject(error);
    // Destroyed already: by its reader, who needs no 'error' for what it gave up.
    else if (!this.destroyed) this.destroy(error);
  }

  override _read(): void {
    if (!this.#sink) this.#flow.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#ended && !this.#failure) this.#flow.abort(error ?? new Error('body destroyed'));
    callback(error);
  }
}

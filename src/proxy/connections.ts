// The proxy's connection bookkeeping for graceful shutdown: every socket it holds (so that what
// is left can be cut) and the requests in flight (so that shutdown can wait for them). It does
// not stop the listener; server.ts does, then drains here.
import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';

export class Connections {
  readonly #sockets = new Set<net.Socket | Duplex>();
  #inFlight = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  /** True once shutdown has begun. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Remembers `socket` until it closes. A property, not a method: it is handed around as a callback. */
  readonly track = (socket: net.Socket | Duplex): void => {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  };

  /** Counts a request until its response closes; during shutdown, its connection closes after it. */
  begin(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#inFlight += 1;
    if (this.#closing) res.shouldKeepAlive = false;
    res.once('close', () => {
      this.#inFlight -= 1;
      if (this.#closing) {
        req.socket.destroySoon();
        if (this.#inFlight === 0) this.#drained?.();
      }
    });
  }

  /** From now on, responses close their connections and `closing` is true. */
  beginClosing(): void {
    this.#closing = true;
  }

  /** Waits for the requests in flight, for up to `graceMs`, then destroys every socket left. */
  async drain(graceMs: number): Promise<void> {
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    for (const socket of this.#sockets) socket.destroy();
  }
}

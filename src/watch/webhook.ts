// The webhook (`watch.webhook`): one JSON POST per change of state, with a `text` line so that
// Slack-compatible receivers (Slack, Mattermost, Rocket.Chat, Teams' incoming webhooks) show it
// and generic receivers read the fields. Sent one at a time from a bounded queue, in the
// background: a slow or dead receiver never blocks a pull or a check; past the bound the oldest
// waiting message is dropped (and counted). A failed POST (no answer, 429, 5xx) is retried with
// exponential back-off; another 4xx is not (the receiver will not change its mind).
import { Readable } from 'node:stream';
import type { Send } from './check.ts';
import type { Clock } from './pace.ts';
import { referenceOf, type WatchEvent } from './state.ts';

export interface WebhookOptions {
  readonly url: string;
  readonly send: Send;
  readonly clock: Clock;
  /** Messages waiting at most; more drop the oldest. */
  readonly maxQueue?: number;
  /** Attempts per message, the first included. */
  readonly attempts?: number;
  /** Wait before the first retry; doubled for each next one, up to maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A message given up on, or dropped from a full queue. */
  readonly onFailure?: (failure: { reference: string; reason: string }) => void;
}

/** The body of a webhook POST. */
export interface WebhookPayload {
  readonly text: string;
  readonly reference: string;
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly state: WatchEvent['kind'];
  readonly previousState: WatchEvent['previous'];
  readonly oldDigest: string;
  readonly newDigest: string | null;
  /** The pin that now keeps the image from eviction, if one was set. */
  readonly pinned: string | null;
  readonly note: string | null;
  readonly time: string;
}

const WHAT: Record<WatchEvent['kind'], string> = {
  ok: 'is back as cached',
  changed: 'changed upstream',
  vanished: 'vanished upstream (404)',
  unauthorized: 'is refused upstream (401/403)',
  unreachable: 'cannot be checked: upstream unreachable',
};

export function payloadOf(event: WatchEvent, pinned: string | null): WebhookPayload {
  const reference = referenceOf(event);
  const digests =
    event.kind === 'changed'
      ? `${short(event.oldDigest)} → ${short(event.newDigest)}`
      : short(event.oldDigest);
  const pin = pinned === null ? '' : `; cached copy pinned (${pinned})`;
  // Back to ok from changed: a pull cached what upstream has now, nothing came back.
  const what =
    event.kind === 'ok' && event.previous === 'changed'
      ? 'is cached as upstream has it now'
      : WHAT[event.kind];
  return {
    text: `pullthrough: ${reference} ${what} (${digests})${pin}`,
    reference,
    registry: event.registry,
    repository: event.repository,
    tag: event.tag,
    state: event.kind,
    previousState: event.previous,
    oldDigest: event.oldDigest,
    newDigest: event.newDigest,
    pinned,
    note: event.note,
    time: new Date(event.at).toISOString(),
  };
}

function short(digest: string | null): string {
  return digest === null ? 'none' : digest.replace(/^sha256:/, '').slice(0, 12);
}

export class Webhook {
  readonly #options: Required<Omit<WebhookOptions, 'onFailure'>> & Pick<WebhookOptions, 'onFailure'>;
  readonly #url: URL;
  readonly #queue: WebhookPayload[] = [];
  readonly #stop = new AbortController();
  #draining: Promise<void> | undefined;
  /** POSTs the receiver took, and messages given up on or dropped. */
  delivered = 0;
  failed = 0;

  constructor(options: WebhookOptions) {
    this.#options = { maxQueue: 1000, attempts: 6, backoffMs: 1000, maxBackoffMs: 300_000, ...options };
    this.#url = new URL(options.url);
  }

  /** Queues a message; returns at once. */
  notify(payload: WebhookPayload): void {
    if (this.#stop.signal.aborted) return;
    if (this.#queue.length >= this.#options.maxQueue) {
      const dropped = this.#queue.shift();
      if (dropped) this.#fail(dropped, 'queue full: dropped');
    }
    this.#queue.push(payload);
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
  }

  /** Resolves when nothing is waiting or being sent (tests; a graceful stop). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Stops sending: what is queued is dropped. */
  close(): void {
    this.#stop.abort(new Error('closed'));
    this.#queue.length = 0;
  }

  async #drain(): Promise<void> {
    for (let payload = this.#queue.shift(); payload; payload = this.#queue.shift()) {
      await this.#deliver(payload);
    }
  }

  async #deliver(payload: WebhookPayload): Promise<void> {
    const { attempts, backoffMs, maxBackoffMs, clock } = this.#options;
    let reason = '';
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (this.#stop.signal.aborted) return;
      const answer = await this.#post(payload);
      if (answer === 'ok') {
        this.delivered += 1;
        return;
      }
      reason = answer.reason;
      if (!answer.retry || attempt === attempts) break;
      const wait = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
      try {
        await clock.sleep(wait, this.#stop.signal);
      } catch {
        return;
      }
    }
    this.#fail(payload, reason);
  }

  async #post(payload: WebhookPayload): Promise<'ok' | { retry: boolean; reason: string }> {
    const body = Buffer.from(JSON.stringify(payload));
    try {
      const response = await this.#options.send({
        origin: this.#url.origin,
        method: 'POST',
        path: `${this.#url.pathname}${this.#url.search}`,
        headers: {
          'content-type': 'application/json',
          'content-length': String(body.length),
          'user-agent': 'pullthrough-watch',
        },
        body: Readable.from([body]),
        signal: AbortSignal.any([AbortSignal.timeout(30_000), this.#stop.signal]),
      });
      await response.body.dump();
      const status = response.statusCode;
      if (status >= 200 && status < 300) return 'ok';
      return {
        retry: status === 429 || status >= 500 || status === 408,
        reason: `receiver answered ${status}`,
      };
    } catch (error) {
      return { retry: true, reason: (error as Error).message };
    }
  }

  #fail(payload: WebhookPayload, reason: string): void {
    this.failed += 1;
    this.#options.onFailure?.({ reference: payload.reference, reason });
  }
}

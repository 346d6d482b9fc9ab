// The access answers of "private stays private" (access/access.ts), shared between replicas: each
// grant, public mark and anonymous token remembered on one replica is published on a Redis
// channel and learnt by the others, so a grant seen by one counts on all. Only hashed keys
// travel, never a credential. An answer missed while Redis was down costs an upstream HEAD on
// the replica that missed it, never a wrong answer: a refusal is never remembered, so there is
// nothing to share that could let a client in.
import type { Redis } from 'ioredis';
import type { AccessAnswer } from '../access/access.ts';

export class SharedAccess {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #me: string;

  constructor(publisher: Redis, subscriber: Redis, options: { prefix: string; me: string }) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#channel = `${options.prefix}access`;
    this.#me = options.me;
  }

  /** Hands every answer the other replicas publish to `learn` (resubscribed after reconnects). */
  async start(learn: (answer: AccessAnswer) => void): Promise<void> {
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const parsed = parse(message);
      if (parsed && parsed.from !== this.#me) learn(parsed.answer);
    });
    // Subscribed again on every (re)connection: one made while Redis was down never took.
    const subscribe = () => void this.#subscriber.subscribe(this.#channel).catch(() => undefined);
    this.#subscriber.on('ready', subscribe);
    await this.#subscriber.connect().catch(() => undefined);
  }

  /** Tells the others; lost while Redis is down (they ask upstream instead). */
  readonly publish = (answer: AccessAnswer): void => {
    const message = JSON.stringify({ from: this.#me, ...answer });
    this.#publisher.publish(this.#channel, message).catch(() => undefined);
  };

  stop(): void {
    this.#subscriber.disconnect();
  }
}

function parse(message: string): { from: string; answer: AccessAnswer } | undefined {
  try {
    const { from, kind, id, at } = JSON.parse(message) as Record<string, unknown>;
    if (typeof from !== 'string' || typeof id !== 'string' || typeof at !== 'number') return undefined;
    if (kind !== 'grant' && kind !== 'public' && kind !== 'anonymous') return undefined;
    return { from, answer: { kind, id, at } };
  } catch {
    return undefined;
  }
}

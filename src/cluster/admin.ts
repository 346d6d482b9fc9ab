// The cluster-wide admin requests of a replica that does not keep the books, sent on to the one
// that does (the holder of `<prefix>book`, whose value is its Member: id and internal URL) over
// the internal endpoint, and its answer streamed back unchanged. Checking the caller's admin token
// is admin/'s, before this; the hop carries the cluster secret, never the caller's token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import type { Member } from './members.ts';

/** The admin API's paths on the internal endpoint: `/cluster/v1/admin/…` is `/admin/…` there. */
export const ADMIN_PREFIX = '/cluster/v1';

/** Headers of one hop only (RFC 9110 §7.6.1): not copied from the bookkeeper's answer. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer']);

/** Nobody can answer for the books now: the message says why and that it passes (answered 503). */
export class BookkeeperUnavailableError extends Error {
  override readonly name = 'BookkeeperUnavailableError';
  readonly code = 'BOOKKEEPER_UNAVAILABLE';
}

export interface AdminForwardOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly me: Member;
  readonly secret: string;
  readonly leaseTtlMs: number;
  /** The members seen at the last heartbeat (a holder whose heartbeat expired is not tried). */
  readonly members: () => readonly Member[];
}

export class AdminForward {
  readonly #o: AdminForwardOptions;
  // A purge of a large cache takes a while before its answer; a dead peer must fail fast.
  readonly #agent = new Agent({ headersTimeout: 600_000, bodyTimeout: 60_000, connectTimeout: 3_000 });

  constructor(options: AdminForwardOptions) {
    this.#o = options;
  }

  /** The replica that holds the book lease now; undefined when vacant; throws when Redis cannot say. */
  async bookkeeper(): Promise<Member | undefined> {
    const value = await this.#o.redis.get(`${this.#o.prefix}book`);
    return value === null ? undefined : (JSON.parse(value) as Member);
  }

  /**
   * Answers `req` with the bookkeeper's answer. Rejects with BookkeeperUnavailableError before
   * anything is sent when no bookkeeper can answer; a failure after the headers cuts `res`.
   */
  async send(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const keeper = await this.#find();
    let answer;
    try {
      answer = await request(`${keeper.url}${ADMIN_PREFIX}${req.url ?? '/'}`, {
        dispatcher: this.#agent,
        method: req.method ?? 'GET',
        headers: { authorization: `Bearer ${this.#o.secret}`, 'x-pullthrough-forwarded-by': this.#o.me.id },
      });
    } catch (error) {
      throw this.#unavailable(
        `the bookkeeper ${keeper.id} at ${keeper.url} does not answer (${reason(error)})`,
      );
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    // Unchanged but for one header saying who answered (the operator's first question).
    res.writeHead(answer.statusCode, { ...headers, 'x-pullthrough-bookkeeper': keeper.id });
    await pipeline(answer.body, res);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  async #find(): Promise<Member> {
    let keeper: Member | undefined;
    try {
      keeper = await this.bookkeeper();
    } catch (error) {
      throw this.#unavailable(`Redis cannot say which replica keeps the books (${reason(error)})`);
    }
    if (!keeper) throw this.#unavailable('no replica keeps the books (the book lease is vacant)');
    if (keeper.id === this.#o.me.id) {
      throw this.#unavailable('this replica has just taken the books and is opening the index');
    }
    if (!(await this.#alive(keeper))) {
      throw this.#unavailable(`the bookkeeper ${keeper.id} has stopped its heartbeats`);
    }
    return keeper;
  }

  /** Its heartbeat has not expired (members.ts): asked afresh unless the last heartbeat saw it. */
  async #alive(keeper: Member): Promise<boolean> {
    if (this.#o.members().some((member) => member.id === keeper.id)) return true;
    const expires = await this.#o.redis.zscore(`${this.#o.prefix}members`, keeper.id).catch(() => null);
    return expires === null ? false : Number(expires) > Date.now();
  }

  #unavailable(why: string): BookkeeperUnavailableError {
    const seconds = Math.ceil(this.#o.leaseTtlMs / 1000);
    return new BookkeeperUnavailableError(
      `no cache bookkeeper can answer: ${why}; a live replica takes the books within ` +
        `cluster.leaseTtl (${seconds} s) on its own, so retry then`,
    );
  }
}

function reason(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  return code ?? message ?? String(error);
}

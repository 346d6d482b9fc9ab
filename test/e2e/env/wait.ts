// Bounded polling, for readiness that no event announces (a daemon's port or socket opening).
import { setTimeout as delay } from 'node:timers/promises';

export interface PollOptions {
  /** What is awaited, for the timeout message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before each try: a string ends the wait at once with that reason (say, the daemon exited). */
  abort?: () => string | undefined;
}

/** Calls `probe` until it resolves to a value other than `undefined`; throws after `timeoutMs`. */
export async function poll<T>(probe: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    const reason = options.abort?.();
    if (reason !== undefined) throw new Error(`gave up waiting for ${options.what}: ${reason}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const cause = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${cause}`, {
        cause: last,
      });
    }
    await delay(options.intervalMs ?? 50);
  }
}

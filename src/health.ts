// What the proxy knows of its own health, for `/readyz` and the log: failures to write the
// cache (logged once per cause, with the path and the free space left; counted as degraded for
// a while after the last one), a cache that is read-only from the start, and shutting down.
import { statfs } from 'node:fs/promises';
import { CacheWriteError, type WriteFailureContext } from './cache/errors.ts';
import type { Readiness } from './local.ts';
import type { Logger } from './log.ts';

/** How long after the last failed write the cache still counts as degraded. */
const DEGRADED_FOR_MS = 10 * 60_000;

export class Health {
  readonly #log: Logger;
  readonly #cacheDir: string;
  readonly #logged = new Set<string>();
  #readOnly: string | undefined;
  #lastFailure: { code: string; at: number } | undefined;
  #closing = false;

  constructor(log: Logger, cacheDir: string) {
    this.#log = log;
    this.#cacheDir = cacheDir;
  }

  /** The cache could not be written at start: served read-only for the whole run. */
  cacheReadOnly(reason: string): void {
    this.#readOnly = reason;
  }

  /** A write to the cache failed (the request went on uncached). Never throws. */
  readonly cacheWriteFailed = (error: unknown, context?: WriteFailureContext): void => {
    const cause = causeOf(error);
    const code = writeFailureCode(error);
    this.#lastFailure = { code, at: Date.now() };
    if (this.#logged.has(code)) return;
    this.#logged.add(code);
    const path = context?.path ?? (error instanceof CacheWriteError ? error.path : undefined);
    void statfs(this.#cacheDir)
      .then(
        (fs) => fs.bavail * fs.bsize,
        () => undefined,
      )
      .then((freeBytes) =>
        this.#log.warn(
          { code, err: cause.message, path, freeBytes },
          'cache not writable: serving without caching',
        ),
      );
  };

  closing(): void {
    this.#closing = true;
  }

  readonly readiness = (): Readiness => {
    const degraded: string[] = [];
    if (this.#readOnly !== undefined) degraded.push(this.#readOnly);
    const failure = this.#lastFailure;
    if (failure && Date.now() - failure.at < DEGRADED_FOR_MS) {
      degraded.push(`cache writes failing (${failure.code}): pulls are served uncached`);
    }
    return { ready: !this.#closing, degraded };
  };
}

/** What failed under a cache write: the system error a CacheWriteError wraps, or the error itself. */
function causeOf(error: unknown): NodeJS.ErrnoException {
  return (
    error instanceof CacheWriteError && error.cause instanceof Error ? error.cause : error
  ) as NodeJS.ErrnoException;
}

/** A failed cache write's errno code (ENOSPC, EACCES, EROFS...) or error name: logs and metrics. */
export function writeFailureCode(error: unknown): string {
  const cause = causeOf(error);
  return cause.code ?? cause.name ?? 'unknown';
}

// When the cache's own storage refuses a write (disk full, read-only, permissions, I/O errors):
// the error that callers may treat as "not cached" and the listener through which the app hears
// of each failure. A storage failure never fails a client; only wrong content or upstream does.

/** Where a write failed: the file the cache tried to write, and the digest it was for. */
export interface WriteFailureContext {
  readonly path: string;
  readonly digest?: string;
}

/**
 * Called once per failed write (a fill, a manifest, a record), after its temp file is removed.
 * `error` is the file system's own (with `code`: ENOSPC, EROFS, EIO, …), so the app can log once
 * per cause, and count. Must not throw.
 */
export type WriteFailureListener = (error: Error, context: WriteFailureContext) => void;

/**
 * The disk refused a write of the cache: nothing was stored and no temp file is left. Callers
 * that can do without the cache catch this (and only this) and go on.
 */
export class CacheWriteError extends Error {
  readonly code = 'CACHE_WRITE_FAILED';
  readonly path: string;

  constructor(cause: Error, path: string) {
    super(`cannot write the cache (${path}): ${cause.message}`, { cause });
    this.name = 'CacheWriteError';
    this.path = path;
  }
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The cache chose not to store a fill (larger than the cache, or the disk below its free-space
 * floor): the fill relays, verified, and nothing failed.
 */
export class NotAdmittedError extends Error {
  readonly code = 'NOT_ADMITTED';

  constructor(reason: string) {
    super(`not stored: ${reason}`);
    this.name = 'NotAdmittedError';
  }
}

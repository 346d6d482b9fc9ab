// Content-addressed blob storage behind a small interface (stat, read with range, write →
// commit/abort, delete, list), so another backend can replace the disk one without touching
// the registry handler. Writes go to a temp file, are hashed on the way (or by the caller, who
// sees every byte: fills.ts), and are published by an atomic rename only when digest and size
// match.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DigestVerifier, parseDigest, type ParsedDigest } from '../oci/digest.ts';
import { initCacheDir, type CacheInit, type InitOptions } from './init.ts';
import { CacheLayout } from './layout.ts';

export type { CacheInit } from './init.ts';

export interface BlobInfo {
  readonly size: number;
}

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
}

/**
 * Bytes read into the caller's buffer, so that one sender can reuse a few buffers for a whole
 * blob instead of allocating one per chunk (registry/respond/pump.ts). The source never keeps `buffer`.
 */
export interface ByteSource {
  /** Reads the next bytes into `buffer`; resolves how many (at least 1), or 0 at the end. */
  read(buffer: Buffer): Promise<number>;
  /** Releases what the source holds. Safe more than once, and before the end. */
  close(): Promise<void>;
}

export interface BlobWriter {
  /** The temp file being written: readers may tail it while the write is in progress. */
  readonly tempPath: string;
  readonly bytesWritten: number;
  /**
   * Appends chunks (hashing them, unless the caller verifies) in one write; resolves once they
   * are in the file (readable by positional reads). One write at a time. After a rejection the
   * file holds `bytesWritten` bytes; the writer takes no more and expects abort(). The writer
   * keeps no reference to `chunks` once write() settles: the caller reuses those buffers.
   */
  write(chunks: Buffer | readonly Buffer[]): Promise<void>;
  /**
   * Verifies digest (and size, when known; skipped when the caller verifies) and publishes
   * atomically; throws on mismatch or when the disk refuses, having removed the temp file.
   */
  commit(expectedSize?: number): Promise<void>;
  /** Drops the temp file. Safe to call after a failed commit, and more than once. */
  abort(): Promise<void>;
}

export interface BeginOptions {
  /**
   * The caller hashes every byte and checks the digest before commit(): a fill must verify bytes
   * that a failing disk may never take. The writer then hashes nothing (each byte is hashed
   * once) and commit() only publishes.
   */
  readonly callerVerifies?: boolean;
  /**
   * For a store that replicas share (a bucket): whether this writer is the one to put the blob
   * there, asked as bytes arrive and at commit (absent: it is). A replica streaming a fill from
   * the replica that fetches it says no (cluster/fills.ts): its writer keeps the bytes local (the
   * temp file its readers tail, a local front tier), and uploads only once told yes (it took the
   * fetch over) or when, verified, the blob is still missing from the store. A store on local
   * disk ignores it.
   */
  readonly shares?: () => boolean;
}

export interface BlobStore {
  stat(digest: string): Promise<BlobInfo | undefined>;
  /** The blob's bytes (all, or `range`); rejects with ENOENT if the blob is gone. */
  open(digest: string, range?: ByteRange): Promise<ByteSource>;
  /** The whole blob in memory: for small ones (manifests). */
  readAll(digest: string): Promise<Buffer>;
  /** A writer into a new temp file; rejects (creating nothing) when the disk refuses. */
  begin(digest: string, options?: BeginOptions): Promise<BlobWriter>;
  delete(digest: string): Promise<void>;
  list(): AsyncIterable<{ digest: string; size: number }>;
  /**
   * Where a client may fetch the stored blob itself (a presigned URL of an object store, answered
   * with a 307), or undefined to have it streamed. Absent on the disk store.
   */
  location?(digest: string): Promise<string | undefined>;
}

export class DiskBlobStore implements BlobStore {
  readonly layout: CacheLayout;

  constructor(root: string) {
    this.layout = new CacheLayout(root);
  }

  /**
   * Creates the directories and removes temp files left by a previous process. Resolves, not
   * throws, when the directory cannot be written (read-only, full, no permission): what is
   * cached is still served, and `reason` says why nothing new will be.
   */
  init(options: InitOptions = {}): Promise<CacheInit> {
    return initCacheDir(this.layout, options);
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.layout.blobPath(mustParse(digest)));
      return info.isFile() ? { size: info.size } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async open(digest: string, range?: ByteRange): Promise<ByteSource> {
    const file = await open(this.layout.blobPath(mustParse(digest)), 'r');
    return new FileSource(file, range?.start ?? 0, range ? range.end + 1 : Number.POSITIVE_INFINITY);
  }

  readAll(digest: string): Promise<Buffer> {
    return readFile(this.layout.blobPath(mustParse(digest)));
  }

  async begin(digest: string, options: BeginOptions = {}): Promise<BlobWriter> {
    const parsed = mustParse(digest);
    const tempPath = this.layout.tempPath(parsed, randomBytes(6).toString('hex'));
    const handle = await open(tempPath, 'wx', 0o644);
    const verifier = options.callerVerifies ? undefined : new DigestVerifier(parsed);
    return new DiskBlobWriter(handle, tempPath, this.layout.blobPath(parsed), verifier);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.layout.blobPath(mustParse(digest)), { force: true });
  }

  async *list(): AsyncIterable<{ digest: string; size: number }> {
    for (const algorithm of await readdir(this.layout.blobsDir).catch(() => [] as string[])) {
      const algorithmDir = path.join(this.layout.blobsDir, algorithm);
      for (const prefix of await readdir(algorithmDir)) {
        for (const hex of await readdir(path.join(algorithmDir, prefix))) {
          const digest = `${algorithm}:${hex}`;
          if (parseDigest(digest) === undefined) continue;
          const info = await this.stat(digest);
          if (info) yield { digest, size: info.size };
        }
      }
    }
  }
}

class DiskBlobWriter implements BlobWriter {
  readonly tempPath: string;
  readonly #handle: FileHandle;
  readonly #finalPath: string;
  /** Undefined when the caller verifies. */
  readonly #verifier: DigestVerifier | undefined;
  #written = 0;
  #closed = false;

  constructor(handle: FileHandle, tempPath: string, finalPath: string, verifier: DigestVerifier | undefined) {
    this.#handle = handle;
    this.tempPath = tempPath;
    this.#finalPath = finalPath;
    this.#verifier = verifier;
  }

  get bytesWritten(): number {
    return this.#written;
  }

  async write(chunks: Buffer | readonly Buffer[]): Promise<void> {
    let pending: readonly Buffer[] = Buffer.isBuffer(chunks) ? [chunks] : chunks;
    if (this.#verifier) for (const chunk of pending) this.#verifier.update(chunk);
    // A writev may write less than asked (rare on files: a signal, a disk about to be full).
    while (pending.length > 0) {
      const { bytesWritten } = await this.#handle.writev(pending, this.#written);
      this.#written += bytesWritten;
      pending = after(pending, bytesWritten);
    }
  }

  async commit(expectedSize?: number): Promise<void> {
    try {
      this.#verifier?.verify(expectedSize);
      await this.#close();
      await mkdir(path.dirname(this.#finalPath), { recursive: true });
      // Same filesystem (tmp/ is inside the cache): rename is atomic; a concurrent writer of the
      // same digest produced identical bytes, so whichever rename lands last is fine.
      await rename(this.tempPath, this.#finalPath);
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  async abort(): Promise<void> {
    // A close that fails (EIO) must not keep the temp file.
    await this.#close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

/** What is left of `chunks` once their first `count` bytes are written (empty chunks dropped). */
export function after(chunks: readonly Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const chunk of chunks) {
    if (count >= chunk.length) count -= chunk.length;
    else {
      rest.push(count === 0 ? chunk : chunk.subarray(count));
      count = 0;
    }
  }
  return rest;
}

/** A file read from `position` up to `end` (exclusive), positional reads into the caller's buffer. */
export class FileSource implements ByteSource {
  readonly #file: FileHandle;
  readonly #end: number;
  #position: number;
  #closed = false;

  constructor(file: FileHandle, start: number, end: number) {
    this.#file = file;
    this.#position = start;
    this.#end = end;
  }

  async read(buffer: Buffer): Promise<number> {
    const length = Math.min(buffer.length, this.#end - this.#position);
    if (length <= 0) return 0;
    const { bytesRead } = await this.#file.read(buffer, 0, length, this.#position);
    this.#position += bytesRead;
    return bytesRead;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close();
  }
}

function mustParse(digest: string): ParsedDigest {
  const parsed = parseDigest(digest);
  if (!parsed) throw new TypeError(`not a supported digest: ${JSON.stringify(digest).slice(0, 100)}`);
  return parsed;
}

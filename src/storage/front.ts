// The local disk as a front tier of the bucket (storage.front.maxSize): recently used blobs kept
// in <cache.dir>/front/ and served from there at local-disk speed, least recently used dropped
// past the cap. A blob enters when a fill commits (its temp file is linked in: no second copy)
// or after a whole read from the bucket (fetched again in the background, verified). The bucket
// stays the truth: a delete removes both copies, and a front file that is gone falls back to it.
//
//   <cache.dir>/front/<algorithm>/<hex>       a verified copy of a blob in the bucket
//   <cache.dir>/front/tmp/<random>            copies on their way in; swept at start
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  FileSource,
  type BeginOptions,
  type BlobInfo,
  type BlobStore,
  type BlobWriter,
  type ByteRange,
  type ByteSource,
} from '../cache/blobs.ts';
import { DigestVerifier, type ParsedDigest } from '../oci/digest.ts';
import { mustParse } from './keys.ts';

/** Whole blobs copied in from the bucket at once; more reads than that are not copied. */
const WARMING_AT_ONCE = 2;

export class FrontTier implements BlobStore {
  readonly #inner: BlobStore;
  readonly #dir: string;
  readonly #tmp: string;
  readonly #maxSize: number;
  /** Digest → size, least recently used first (a Map keeps insertion order). */
  readonly #entries = new Map<string, number>();
  readonly #warming = new Map<string, Promise<void>>();
  #bytes = 0;

  private constructor(inner: BlobStore, dir: string, maxSize: number) {
    this.#inner = inner;
    this.#dir = dir;
    this.#tmp = path.join(dir, 'tmp');
    this.#maxSize = maxSize;
  }

  /** Sweeps copies left half-way by a previous process and takes the rest, oldest first. */
  static async open(inner: BlobStore, dir: string, maxSize: number): Promise<FrontTier> {
    const front = new FrontTier(inner, dir, maxSize);
    await rm(front.#tmp, { recursive: true, force: true });
    await mkdir(front.#tmp, { recursive: true });
    const found: Array<{ digest: string; size: number; mtimeMs: number }> = [];
    for (const algorithm of await readdir(dir)) {
      if (algorithm === 'tmp') continue;
      for (const hex of await readdir(path.join(dir, algorithm)).catch(() => [] as string[])) {
        const info = await stat(path.join(dir, algorithm, hex)).catch(() => undefined);
        if (info?.isFile())
          found.push({ digest: `${algorithm}:${hex}`, size: info.size, mtimeMs: info.mtimeMs });
      }
    }
    for (const blob of found.sort((a, b) => a.mtimeMs - b.mtimeMs)) await front.#add(blob.digest, blob.size);
    return front;
  }

  /** Bytes held on the local disk now. */
  get bytes(): number {
    return this.#bytes;
  }

  has(digest: string): boolean {
    return this.#entries.has(digest);
  }

  /** Resolves when no copy from the bucket is under way (tests wait on it; no polling). */
  async idle(): Promise<void> {
    while (this.#warming.size > 0) await Promise.all(this.#warming.values());
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    const size = this.#entries.get(digest);
    return size === undefined ? this.#inner.stat(digest) : { size };
  }

  async open(digest: string, range?: ByteRange): Promise<ByteSource> {
    if (this.#entries.has(digest)) {
      try {
        const file = await open(this.#path(mustParse(digest)), 'r');
        this.#touch(digest);
        return new FileSource(file, range?.start ?? 0, range ? range.end + 1 : Number.POSITIVE_INFINITY);
      } catch {
        this.#forget(digest); // removed behind our back: the bucket has it
      }
    }
    const source = await this.#inner.open(digest, range);
    if (!range) this.#warm(digest);
    return source;
  }

  async readAll(digest: string): Promise<Buffer> {
    if (this.#entries.has(digest)) {
      const content = await readFile(this.#path(mustParse(digest))).catch(() => undefined);
      if (content) {
        this.#touch(digest);
        return content;
      }
      this.#forget(digest);
    }
    return this.#inner.readAll(digest);
  }

  /** The bucket's writer; its temp file is linked into the front once the upload completes. */
  async begin(digest: string, options?: BeginOptions): Promise<BlobWriter> {
    const writer = await this.#inner.begin(digest, options);
    return new FrontWriter(writer, (size) => this.#adopt(digest, writer.tempPath, size));
  }

  async delete(digest: string): Promise<void> {
    await this.#inner.delete(digest);
    this.#forget(digest);
    await rm(this.#path(mustParse(digest)), { force: true });
  }

  list(): AsyncIterable<{ digest: string; size: number }> {
    return this.#inner.list();
  }

  /** A presigned URL wins over the front: with redirects on, the clients read the bucket. */
  async location(digest: string): Promise<string | undefined> {
    return this.#inner.location?.(digest);
  }

  /** Called before the writer's commit: a link to the verified temp file, renamed in after it. */
  async #adopt(digest: string, tempPath: string, size: number): Promise<Adoption | undefined> {
    if (this.#maxSize <= 0 || size > this.#maxSize) return undefined;
    const linked = path.join(this.#tmp, randomBytes(6).toString('hex'));
    await link(tempPath, linked);
    const discard = () => rm(linked, { force: true }).catch(() => undefined);
    return { publish: () => this.#publish(digest, linked, size).catch(discard), discard };
  }

  /** Copies a blob just read whole from the bucket, in the background, verified. */
  #warm(digest: string): void {
    if (this.#maxSize <= 0 || this.#warming.has(digest) || this.#warming.size >= WARMING_AT_ONCE) return;
    const copy = this.#copyIn(mustParse(digest))
      .catch(() => undefined)
      .finally(() => this.#warming.delete(digest));
    this.#warming.set(digest, copy);
  }

  async #copyIn(digest: ParsedDigest): Promise<void> {
    const name = `${digest.algorithm}:${digest.hex}`;
    const size = (await this.#inner.stat(name))?.size;
    if (size === undefined || size > this.#maxSize) return;
    const temp = path.join(this.#tmp, randomBytes(6).toString('hex'));
    const verifier = new DigestVerifier(digest);
    const file = await open(temp, 'wx', 0o644);
    try {
      const source = await this.#inner.open(name);
      const buffer = Buffer.allocUnsafe(256 * 1024);
      try {
        for (let n = await source.read(buffer); n > 0; n = await source.read(buffer)) {
          verifier.update(buffer.subarray(0, n));
          await file.write(buffer, 0, n);
        }
      } finally {
        await source.close();
      }
      verifier.verify(size);
      await file.close();
      await this.#publish(name, temp, size);
    } catch (error) {
      await file.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  async #publish(digest: string, temp: string, size: number): Promise<void> {
    const final = this.#path(mustParse(digest));
    await mkdir(path.dirname(final), { recursive: true });
    await rename(temp, final);
    await this.#add(digest, size);
  }

  /** Takes `digest` in and removes what no longer fits; resolves once their files are gone. */
  async #add(digest: string, size: number): Promise<void> {
    this.#forget(digest);
    this.#entries.set(digest, size);
    this.#bytes += size;
    const victims: string[] = [];
    // Least recently used first; an open reader keeps its descriptor working after the unlink.
    for (const victim of this.#entries.keys()) {
      if (this.#bytes <= this.#maxSize || victim === digest) break;
      this.#forget(victim);
      victims.push(victim);
    }
    await Promise.all(
      victims.map((victim) => rm(this.#path(mustParse(victim)), { force: true }).catch(() => undefined)),
    );
  }

  #touch(digest: string): void {
    const size = this.#entries.get(digest);
    if (size === undefined) return;
    this.#entries.delete(digest);
    this.#entries.set(digest, size);
  }

  #forget(digest: string): void {
    const size = this.#entries.get(digest);
    if (size === undefined) return;
    this.#entries.delete(digest);
    this.#bytes -= size;
  }

  #path(digest: ParsedDigest): string {
    return path.join(this.#dir, digest.algorithm, digest.hex);
  }
}

interface Adoption {
  /** The commit succeeded: the linked copy joins the front. */
  publish(): Promise<void>;
  /** The commit failed: the linked copy goes. */
  discard(): Promise<void>;
}

/** The bucket's writer, with the front tier taking a link to its temp file around the commit. */
class FrontWriter implements BlobWriter {
  readonly #writer: BlobWriter;
  readonly #adopt: (size: number) => Promise<Adoption | undefined>;

  constructor(writer: BlobWriter, adopt: (size: number) => Promise<Adoption | undefined>) {
    this.#writer = writer;
    this.#adopt = adopt;
  }

  get tempPath(): string {
    return this.#writer.tempPath;
  }

  get bytesWritten(): number {
    return this.#writer.bytesWritten;
  }

  write(chunks: Buffer | readonly Buffer[]): Promise<void> {
    return this.#writer.write(chunks);
  }

  async commit(expectedSize?: number): Promise<void> {
    // Every byte is in the temp file by now (callers write everything before committing); the
    // link joins the front only once the commit, which verifies and uploads, has succeeded.
    const adoption = await this.#adopt(this.#writer.bytesWritten).catch(() => undefined);
    try {
      await this.#writer.commit(expectedSize);
    } catch (error) {
      await adoption?.discard();
      throw error;
    }
    await adoption?.publish();
  }

  abort(): Promise<void> {
    return this.#writer.abort();
  }
}

// Manifests in the cache: their bytes live in the blob store under their digest (verified like
// any blob); beside them, the media type upstream served them with; and per registry,
// repository and tag, the record of what the tag last resolved to, kept by a RecordStore
// (records.ts: files renamed into place, or objects in a bucket), so a crash never leaves half a
// record, and a write the store refuses leaves nothing at all (CacheWriteError). Recently used manifests are also kept in
// memory (they are small, immutable by digest, and asked for on every pull).
import { LRUCache } from 'lru-cache';
import { DigestVerifier, parseDigest } from '../oci/digest.ts';
import type { BlobStore, BlobWriter } from './blobs.ts';
import { asError, CacheWriteError, type WriteFailureListener } from './errors.ts';
import type { CacheLayout } from './layout.ts';
import { DiskRecords, type RecordKey, type RecordStore } from './records.ts';

export interface StoredManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly content: Buffer;
}

export interface TagRecord {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** When upstream last confirmed this digest for the tag (ms since the epoch). */
  readonly checkedAt: number;
  /**
   * What the tag resolved to for clients with another Accept (upstream negotiates: an index for
   * one, a schema 2 manifest for another), one per media type. The fields above are the latest.
   */
  readonly alternates?: readonly TagVariant[];
}

/** One resolution of a tag, for clients that accept its media type. */
export type TagVariant = Omit<TagRecord, 'alternates'>;

/**
 * What a referrers request (OCI 1.1 `GET /v2/<name>/referrers/<digest>`) last answered: an image
 * index that changes as artifacts are pushed, so kept like a tag. `filtersApplied` is upstream's
 * `OCI-Filters-Applied` header, replayed with the cached index.
 */
export interface ReferrersRecord extends TagVariant {
  readonly filtersApplied?: string;
}

/** Bytes of manifests kept in memory: thousands of typical ones (1–10 KiB; indexes up to ~100 KiB). */
const MEMORY_BYTES = 16 * 1024 * 1024;

export interface ManifestStoreOptions {
  /** Told of every write the disk refused (put and putTag then reject with CacheWriteError). */
  readonly onWriteFailure?: WriteFailureListener;
  /** Where the media types and tag records live; default: files of the layout (DiskRecords). */
  readonly records?: RecordStore;
}

/**
 * Tag records kept where other processes see them too (cluster/tags.ts, in Redis): asked beside
 * the local record (the one upstream confirmed last wins) and written beside it, best effort.
 */
export interface SharedTags {
  get(host: string, name: string, tag: string): Promise<TagRecord | undefined>;
  put(host: string, name: string, tag: string, record: TagRecord): Promise<void>;
}

/**
 * Writes (put, putTag) reject with CacheWriteError when the disk refuses them, having left no
 * file behind: callers that can serve without the cache catch that error, and only that one.
 */
export class ManifestStore {
  readonly #layout: CacheLayout;
  readonly #blobs: BlobStore;
  readonly #records: RecordStore;
  readonly #onWriteFailure: WriteFailureListener | undefined;
  #shared: SharedTags | undefined;
  readonly #memory = new LRUCache<string, StoredManifest>({
    maxSize: MEMORY_BYTES,
    sizeCalculation: (manifest) => manifest.content.length + manifest.mediaType.length + 200,
  });

  constructor(layout: CacheLayout, blobs: BlobStore, options: ManifestStoreOptions = {}) {
    this.#layout = layout;
    this.#blobs = blobs;
    this.#records = options.records ?? new DiskRecords(layout);
    this.#onWriteFailure = options.onWriteFailure;
  }

  async get(digest: string): Promise<StoredManifest | undefined> {
    const remembered = this.#memory.get(digest);
    if (remembered) return remembered;
    const parsed = parseDigest(digest);
    if (!parsed) return undefined;
    const meta = await this.#records.read<{ mediaType: string }>({ kind: 'manifest', digest: parsed });
    if (!meta || (await this.#blobs.stat(digest)) === undefined) return undefined;
    const manifest = { digest, mediaType: meta.mediaType, content: await this.#blobs.readAll(digest) };
    this.#memory.set(digest, manifest);
    return manifest;
  }

  /**
   * Stores `content` under `digest`. Throws DigestMismatchError, before writing anything, if it
   * does not hash to `digest`; CacheWriteError if the disk refuses (nothing left behind).
   */
  async put(digest: string, mediaType: string, content: Buffer): Promise<void> {
    const parsed = parseDigest(digest);
    if (!parsed) throw new TypeError(`not a supported digest: ${digest}`);
    // Verified here, before the disk is asked: a mismatch is never mistaken for a disk failure.
    const verifier = new DigestVerifier(parsed);
    verifier.update(content);
    verifier.verify(content.length);
    let writer: BlobWriter | undefined;
    try {
      writer = await this.#blobs.begin(digest, { callerVerifies: true });
      await writer.write(content);
      await writer.commit(content.length);
    } catch (error) {
      await writer?.abort();
      throw this.#failed(error, writer?.tempPath, digest);
    }
    await this.#writeJson({ kind: 'manifest', digest: parsed }, { mediaType }, digest);
    this.#memory.set(digest, { digest, mediaType, content });
  }

  /** Drops the copy kept in memory (eviction removed the files). */
  forget(digest: string): void {
    this.#memory.delete(digest);
  }

  /** From now on, tag records are also read from and written to `shared` (several replicas). */
  shareTags(shared: SharedTags): void {
    this.#shared = shared;
  }

  async getTag(host: string, name: string, tag: string): Promise<TagRecord | undefined> {
    const [local, shared] = await Promise.all([
      this.#records.read<TagRecord>({ kind: 'tag', host, name, tag }),
      this.#shared?.get(host, name, tag).catch(() => undefined),
    ]);
    if (!local || !shared) return local ?? shared;
    return shared.checkedAt > local.checkedAt ? shared : local;
  }

  async putTag(host: string, name: string, tag: string, record: TagRecord): Promise<void> {
    await this.#shared?.put(host, name, tag, record).catch(() => undefined);
    await this.#writeJson({ kind: 'tag', host, name, tag }, record);
  }

  /** What the referrers index of `subject` (filtered by `artifactType`, '' for none) last was. */
  async getReferrers(
    host: string,
    name: string,
    subject: string,
    artifactType: string,
  ): Promise<ReferrersRecord | undefined> {
    const parsed = parseDigest(subject);
    if (!parsed) return undefined;
    return this.#records.read<ReferrersRecord>({
      kind: 'referrers',
      host,
      name,
      subject: parsed,
      artifactType,
    });
  }

  async putReferrers(
    host: string,
    name: string,
    subject: string,
    artifactType: string,
    record: ReferrersRecord,
  ): Promise<void> {
    const parsed = parseDigest(subject);
    if (!parsed) throw new TypeError(`not a supported digest: ${subject}`);
    await this.#writeJson({ kind: 'referrers', host, name, subject: parsed, artifactType }, record);
  }

  async #writeJson(key: RecordKey, value: object, digest?: string): Promise<void> {
    try {
      await this.#records.write(key, value);
    } catch (error) {
      throw this.#failed(error, undefined, digest); // the error's path names what failed
    }
  }

  /** Tells the listener, and gives the error callers may treat as "not cached". */
  #failed(error: unknown, file: string | undefined, digest?: string): CacheWriteError {
    const cause = asError(error);
    const where = file ?? (cause as NodeJS.ErrnoException).path ?? this.#layout.tmpDir;
    this.#onWriteFailure?.(cause, digest === undefined ? { path: where } : { path: where, digest });
    return new CacheWriteError(cause, where);
  }
}

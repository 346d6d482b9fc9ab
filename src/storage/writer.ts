// One blob written to the bucket while it streams: every chunk goes to a local temp file (which
// the fill's readers tail, cache/fills.ts) and into a multipart upload of its digest key. The
// upload's body is ended only by commit(), after the digest is verified, and S3 completes a
// multipart upload (or stores a single PUT, for blobs under one part) only when its body ends:
// so an unverified object is never visible. abort() fails the body, which makes the SDK abort
// the upload (AbortMultipartUpload); one that a crash leaves is removed by the bucket's
// lifecycle rule (README, "Storage on S3").
import { once } from 'node:events';
import { unlink, type FileHandle } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { after, type BlobWriter } from '../cache/blobs.ts';
import type { DigestVerifier } from '../oci/digest.ts';

const MiB = 1024 * 1024;
/** Part size: S3's minimum is 5 MiB; 8 MiB keeps a 10 000-part upload under 78 GiB. */
const PART_SIZE = 8 * MiB;
/** Parts in flight at once (each held in memory until sent). */
const QUEUE_SIZE = 2;

export interface UploadTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
}

export class S3BlobWriter implements BlobWriter {
  readonly tempPath: string;
  readonly #handle: FileHandle;
  readonly #verifier: DigestVerifier | undefined;
  readonly #body = new PassThrough({ highWaterMark: MiB });
  readonly #upload: Upload;
  /** Settles when the upload completes or fails; never unhandled. */
  readonly #done: Promise<void>;
  #failure: Error | undefined;
  #written = 0;
  #closed = false;
  #ended = false;

  constructor(
    handle: FileHandle,
    tempPath: string,
    target: UploadTarget,
    verifier: DigestVerifier | undefined,
  ) {
    this.#handle = handle;
    this.tempPath = tempPath;
    this.#verifier = verifier;
    // Failing the body is how an upload is aborted: the error is ours, already known.
    this.#body.on('error', () => undefined);
    this.#upload = new Upload({
      client: target.client,
      params: {
        Bucket: target.bucket,
        Key: target.key,
        Body: this.#body,
        ContentType: 'application/octet-stream',
      },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      // On a failure the SDK sends AbortMultipartUpload: parts are never left to pay for.
      leavePartsOnError: false,
    });
    this.#done = this.#upload.done().then(
      () => undefined,
      (error: unknown) => {
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
        // Wakes a write() waiting for the body to drain: nobody reads it any more.
        this.#body.destroy(this.#failure);
      },
    );
  }

  get bytesWritten(): number {
    return this.#written;
  }

  /** Into the temp file first (readers tail it), then into the upload, at the upload's pace. */
  async write(chunks: Buffer | readonly Buffer[]): Promise<void> {
    const list: readonly Buffer[] = Buffer.isBuffer(chunks) ? [chunks] : chunks;
    this.#throwIfFailed();
    if (this.#verifier) for (const chunk of list) this.#verifier.update(chunk);
    let pending = list.filter((chunk) => chunk.length > 0);
    while (pending.length > 0) {
      const { bytesWritten } = await this.#handle.writev(pending, this.#written);
      this.#written += bytesWritten;
      pending = after(pending, bytesWritten);
    }
    // The upload may have failed during the file write: its body is destroyed, and would
    // neither take the chunks nor ever drain.
    this.#throwIfFailed();
    // The upload holds what it is given until a part is full, long after this write resolves,
    // and the caller reuses its buffers then (cache/write-behind.ts's slabs): it gets copies.
    let drained = true;
    for (const chunk of list) if (chunk.length > 0) drained = this.#body.write(Buffer.from(chunk));
    // #done settles when the upload fails at any point, so a failure never leaves this waiting.
    if (!drained) await Promise.race([once(this.#body, 'drain').catch(() => undefined), this.#done]);
    this.#throwIfFailed();
  }

  async commit(expectedSize?: number): Promise<void> {
    try {
      this.#verifier?.verify(expectedSize);
      this.#throwIfFailed();
      await this.#close();
      // The one place the body ends: the upload completes only now, with verified bytes.
      this.#ended = true;
      this.#body.end();
      await this.#done;
      this.#throwIfFailed();
    } catch (error) {
      await this.abort();
      throw error;
    }
    await unlink(this.tempPath).catch(() => undefined);
  }

  async abort(): Promise<void> {
    if (!this.#ended || this.#failure) {
      this.#failure ??= new Error('upload aborted');
      // Failing the body (never ending it) makes the SDK send AbortMultipartUpload once the
      // parts in flight are done (an abort before them could leave those parts behind).
      this.#body.destroy(this.#failure);
      await this.#done;
    }
    await this.#close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

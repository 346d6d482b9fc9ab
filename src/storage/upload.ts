// One multipart upload of a blob's key, fed as a stream, and ended only by finish() once the
// digest verified: S3 completes an upload only when its body ends, so no unverified object is
// ever visible; abort() fails the body and the SDK aborts the upload (README, "Storage on S3").
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

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

export class BlobUpload {
  readonly #body = new PassThrough({ highWaterMark: MiB });
  /** Settles when the upload completes or fails; never unhandled. */
  readonly #done: Promise<void>;
  #failure: Error | undefined;
  #ended = false;
  /** Bytes handed to the upload so far. */
  #sent = 0;

  constructor(target: UploadTarget) {
    // Failing the body is how an upload is aborted: the error is ours, already known.
    this.#body.on('error', () => undefined);
    const upload = new Upload({
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
    this.#done = upload.done().then(
      () => undefined,
      (error: unknown) => {
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
        // Wakes a send() waiting for the body to drain: nobody reads it any more.
        this.#body.destroy(this.#failure);
      },
    );
  }

  get sent(): number {
    return this.#sent;
  }

  /** Throws the upload's failure, once it has one. */
  check(): void {
    if (this.#failure) throw this.#failure;
  }

  /**
   * Hands `chunks` to the upload, at its pace. The upload holds them until a part is full, long
   * after this resolves, and the caller reuses its buffers then (cache/write-behind.ts's slabs):
   * unless `owned`, it gets copies.
   */
  async send(chunks: readonly Buffer[], owned = false): Promise<void> {
    this.check();
    let drained = true;
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      drained = this.#body.write(owned ? chunk : Buffer.from(chunk));
      this.#sent += chunk.length;
    }
    // #done settles when the upload fails at any point, so a failure never leaves this waiting.
    if (!drained) await Promise.race([once(this.#body, 'drain').catch(() => undefined), this.#done]);
    this.check();
  }

  /** Hands over bytes [sent, end) of the file at `path`: those written before the upload began. */
  async catchUp(path: string, end: number): Promise<void> {
    if (this.#sent >= end) return;
    const file = await open(path, 'r');
    try {
      while (this.#sent < end) {
        const buffer = Buffer.allocUnsafe(Math.min(MiB, end - this.#sent));
        const { bytesRead } = await file.read(buffer, 0, buffer.length, this.#sent);
        if (bytesRead === 0) throw new Error('temp file shorter than written');
        await this.send([buffer.subarray(0, bytesRead)], true);
      }
    } finally {
      await file.close();
    }
  }

  /** Ends the body: the upload completes now. Only with every byte sent, and verified. */
  async finish(): Promise<void> {
    this.check();
    this.#ended = true;
    this.#body.end();
    await this.#done;
    this.check();
  }

  async abort(): Promise<void> {
    if (this.#ended && !this.#failure) return;
    this.#failure ??= new Error('upload aborted');
    // Failing the body (never ending it) makes the SDK send AbortMultipartUpload once the parts
    // in flight are done (an abort before them could leave those parts behind).
    this.#body.destroy(this.#failure);
    await this.#done;
  }
}

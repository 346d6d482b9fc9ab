// One blob written for the bucket while it streams: to a local temp file (the fill's readers
// tail it) and, on the replica that stores the blob, to a multipart upload (upload.ts). A replica
// streaming it from the one that fetches (BeginOptions.shares: no) uploads only if it takes the
// fetch over, from its temp file first, or if at commit the bucket still lacks the blob.
import { unlink, type FileHandle } from 'node:fs/promises';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { after, type BlobWriter } from '../cache/blobs.ts';
import type { DigestVerifier } from '../oci/digest.ts';
import { BlobUpload, type UploadTarget } from './upload.ts';

export type { UploadTarget } from './upload.ts';

export class S3BlobWriter implements BlobWriter {
  readonly tempPath: string;
  readonly #handle: FileHandle;
  readonly #target: UploadTarget;
  readonly #verifier: DigestVerifier | undefined;
  readonly #shares: () => boolean;
  /** Begun at once when this writer stores the blob, else once it is told to (#uploading). */
  #upload: BlobUpload | undefined;
  #written = 0;
  #closed = false;

  constructor(
    handle: FileHandle,
    tempPath: string,
    target: UploadTarget,
    verifier: DigestVerifier | undefined,
    shares: () => boolean = () => true,
  ) {
    this.#handle = handle;
    this.tempPath = tempPath;
    this.#target = target;
    this.#verifier = verifier;
    this.#shares = shares;
    this.#uploading();
  }

  get bytesWritten(): number {
    return this.#written;
  }

  /** Into the temp file first (readers tail it), then into the upload, at the upload's pace. */
  async write(chunks: Buffer | readonly Buffer[]): Promise<void> {
    const list: readonly Buffer[] = Buffer.isBuffer(chunks) ? [chunks] : chunks;
    this.#upload?.check();
    if (this.#verifier) for (const chunk of list) this.#verifier.update(chunk);
    const before = this.#written;
    let pending = list.filter((chunk) => chunk.length > 0);
    while (pending.length > 0) {
      const { bytesWritten } = await this.#handle.writev(pending, this.#written);
      this.#written += bytesWritten;
      pending = after(pending, bytesWritten);
    }
    const upload = this.#uploading();
    if (!upload) return;
    // Begun after some writes (a takeover): what the file has from before goes first.
    await upload.catchUp(this.tempPath, before);
    await upload.send(list);
  }

  async commit(expectedSize?: number): Promise<void> {
    try {
      this.#verifier?.verify(expectedSize);
      this.#upload?.check();
      await this.#close();
      const upload = this.#uploading() ?? ((await this.#missing()) ? this.#begin() : undefined);
      if (upload) {
        await upload.catchUp(this.tempPath, this.#written);
        // The one place an upload ends: it completes only now, with verified bytes.
        await upload.finish();
      }
    } catch (error) {
      await this.abort();
      throw error;
    }
    await unlink(this.tempPath).catch(() => undefined);
  }

  async abort(): Promise<void> {
    await this.#upload?.abort();
    await this.#close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }

  /** The upload, begun now if this writer has just been told it stores the blob. */
  #uploading(): BlobUpload | undefined {
    if (!this.#upload && this.#shares()) this.#begin();
    return this.#upload;
  }

  #begin(): BlobUpload {
    this.#upload = new BlobUpload(this.#target);
    return this.#upload;
  }

  /**
   * Whether the bucket still lacks the blob that another replica was to store (it failed to):
   * then this verified copy is uploaded after all. A bucket that cannot answer counts as lacking
   * (the upload then tells whether it can be written).
   */
  async #missing(): Promise<boolean> {
    const { client, bucket, key } = this.#target;
    return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => false,
      () => true,
    );
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

// The BlobStore (cache/blobs.ts) on an S3-compatible bucket: stat is a HEAD, reads are GETs with
// Range, deletes are DELETEs, listing pages through ListObjectsV2, and writes stream to a local
// temp file and, on the replica that stores the blob, a multipart upload (writer.ts). With
// `redirect`, a stored blob also has a presigned GET URL that clients can be sent to instead.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BeginOptions, BlobInfo, BlobStore, BlobWriter, ByteRange, ByteSource } from '../cache/blobs.ts';
import type { CacheLayout } from '../cache/layout.ts';
import { DigestVerifier } from '../oci/digest.ts';
import { isNotFound } from './client.ts';
import { mustParse, type ObjectKeys } from './keys.ts';
import { StreamSource } from './source.ts';
import { S3BlobWriter } from './writer.ts';

/** How long a presigned URL is valid: long enough to start a download, short if it leaks. */
const PRESIGN_SECONDS = 5 * 60;

export interface S3BlobStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  readonly keys: ObjectKeys;
  /** The cache directory's layout: its tmp/ holds the temp file of each write. */
  readonly layout: CacheLayout;
  /** Hand clients presigned URLs (location()) instead of streaming stored blobs. */
  readonly redirect: boolean;
  /**
   * The bucket could not answer whether it holds a blob: stat() then says it does not, so the
   * pull goes upstream (and its fill, failing to upload, relays) instead of failing.
   */
  readonly onUnavailable?: (error: unknown) => void;
}

export class S3BlobStore implements BlobStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #keys: ObjectKeys;
  readonly #layout: CacheLayout;
  readonly #redirect: boolean;
  readonly #onUnavailable: ((error: unknown) => void) | undefined;

  constructor(options: S3BlobStoreOptions) {
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#keys = options.keys;
    this.#layout = options.layout;
    this.#redirect = options.redirect;
    this.#onUnavailable = options.onUnavailable;
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const head = await this.#client.send(new HeadObjectCommand(this.#object(digest)));
      return { size: head.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      if (!this.#onUnavailable) throw error;
      this.#onUnavailable(error);
      return undefined;
    }
  }

  async open(digest: string, range?: ByteRange): Promise<ByteSource> {
    const object = await this.#get(digest, range ? `bytes=${range.start}-${range.end}` : undefined);
    return new StreamSource(object.Body as Readable);
  }

  async readAll(digest: string): Promise<Buffer> {
    const object = await this.#get(digest);
    return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
  }

  async begin(digest: string, options: BeginOptions = {}): Promise<BlobWriter> {
    const parsed = mustParse(digest);
    const tempPath = this.#layout.tempPath(parsed, randomBytes(6).toString('hex'));
    const handle = await open(tempPath, 'wx', 0o644);
    const verifier = options.callerVerifies ? undefined : new DigestVerifier(parsed);
    const target = { client: this.#client, bucket: this.#bucket, key: this.#keys.blob(parsed) };
    return new S3BlobWriter(handle, tempPath, target, verifier, options.shares);
  }

  async delete(digest: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand(this.#object(digest)));
  }

  async *list(): AsyncIterable<{ digest: string; size: number }> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#keys.blobsPrefix, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        const digest = object.Key === undefined ? undefined : this.#keys.digestOf(object.Key);
        if (digest) yield { digest, size: object.Size ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async location(digest: string): Promise<string | undefined> {
    if (!this.#redirect) return undefined;
    return getSignedUrl(this.#client, new GetObjectCommand(this.#object(digest)), {
      expiresIn: PRESIGN_SECONDS,
    });
  }

  /** GetObject; a missing object rejects with ENOENT, as the BlobStore interface says. */
  async #get(digest: string, range?: string) {
    try {
      return await this.#client.send(new GetObjectCommand({ ...this.#object(digest), Range: range }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw Object.assign(new Error(`blob ${digest} is not in the bucket`, { cause: error }), {
        code: 'ENOENT',
      });
    }
  }

  #object(digest: string): { Bucket: string; Key: string } {
    return { Bucket: this.#bucket, Key: this.#keys.blob(mustParse(digest)) };
  }
}

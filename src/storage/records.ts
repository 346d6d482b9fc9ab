// The manifest and tag records (cache/records.ts) as small JSON objects in the bucket: a PUT is
// atomic, so a record is either the old one or the new one, never half of either.
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RecordKey, RecordStore } from '../cache/records.ts';
import { isNotFound } from './client.ts';
import type { ObjectKeys } from './keys.ts';

export class S3Records implements RecordStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #keys: ObjectKeys;
  readonly #onUnavailable: ((error: unknown) => void) | undefined;

  /** `onUnavailable`: a read the bucket could not answer is then no record (upstream is asked). */
  constructor(client: S3Client, bucket: string, keys: ObjectKeys, onUnavailable?: (error: unknown) => void) {
    this.#client = client;
    this.#bucket = bucket;
    this.#keys = keys;
    this.#onUnavailable = onUnavailable;
  }

  async read<T>(key: RecordKey): Promise<T | undefined> {
    try {
      const object = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#keys.record(key) }),
      );
      return JSON.parse((await object.Body?.transformToString('utf8')) ?? '') as T;
    } catch (error) {
      if (isNotFound(error) || error instanceof SyntaxError) return undefined;
      if (!this.#onUnavailable) throw error;
      this.#onUnavailable(error);
      return undefined;
    }
  }

  async write(key: RecordKey, value: object): Promise<void> {
    const Key = this.#keys.record(key);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key,
          Body: JSON.stringify(value),
          ContentType: 'application/json',
        }),
      );
    } catch (error) {
      // The write-failure report names where, as a file path would.
      throw Object.assign(error instanceof Error ? error : new Error(String(error)), {
        path: `s3://${this.#bucket}/${Key}`,
      });
    }
  }

  async remove(key: RecordKey): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#keys.record(key) }));
  }
}

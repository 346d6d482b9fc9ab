// The bucket as the index sees it (cache/index-scan.ts ContentScan): blobs from a listing of
// blobs/ (LastModified stands in for the last use), manifest records from manifests/, tag records
// from tags/ (each read for the digest it names). A replica whose index.db is gone (a new pod, an
// emptyDir) rebuilds it from this, so the bucket's content counts against cache.maxSize again.
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { TagRow } from '../cache/index-db.ts';
import { mapLimited, type ContentScan, type ScannedBlob, type ScannedTag } from '../cache/index-scan.ts';
import type { RecordStore } from '../cache/records.ts';
import { parseDigest } from '../oci/digest.ts';
import { isName, isTag } from '../oci/reference.ts';
import { isNotFound } from './client.ts';
import type { ObjectKeys } from './keys.ts';

interface Listed {
  readonly key: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export class BucketScan implements ContentScan {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #keys: ObjectKeys;
  readonly #records: RecordStore;

  constructor(client: S3Client, bucket: string, keys: ObjectKeys, records: RecordStore) {
    this.#client = client;
    this.#bucket = bucket;
    this.#keys = keys;
    this.#records = records;
  }

  async *blobs(): AsyncIterable<ScannedBlob[]> {
    for await (const page of this.#list(this.#keys.blobsPrefix)) {
      const batch: ScannedBlob[] = [];
      for (const { key, size, mtimeMs } of page) {
        const digest = this.#keys.digestOf(key);
        if (digest) batch.push({ digest, size, mtimeMs });
      }
      yield batch;
    }
  }

  async manifestMetas(): Promise<Set<string>> {
    const found = new Set<string>();
    const prefix = `${this.#keys.prefix}manifests/`;
    for await (const page of this.#list(prefix)) {
      for (const { key } of page) {
        const [algorithm, , name] = key.slice(prefix.length).split('/');
        const digest = `${algorithm}:${name?.replace(/\.json$/, '')}`;
        if (name?.endsWith('.json') && parseDigest(digest)) found.add(digest);
      }
    }
    return found;
  }

  async tags(): Promise<ScannedTag[]> {
    const prefix = `${this.#keys.prefix}tags/`;
    const named: Array<Omit<ScannedTag, 'digest'>> = [];
    for await (const page of this.#list(prefix)) {
      for (const { key } of page) {
        // <host>/<repository…>/_tags/<tag>.json
        const parts = key.slice(prefix.length).split('/');
        const file = parts.pop() ?? '';
        const host = parts.shift() ?? '';
        if (parts.pop() !== '_tags' || !file.endsWith('.json')) continue;
        const repository = parts.join('/');
        const tag = file.slice(0, -'.json'.length);
        if (isName(repository) && isTag(tag) && host !== '') named.push({ host, repository, tag });
      }
    }
    const read = await mapLimited(named, async (tag) => {
      const key = { kind: 'tag', host: tag.host, name: tag.repository, tag: tag.tag } as const;
      const record = await this.#records.read<{ digest?: unknown }>(key).catch(() => undefined);
      const digest = record?.digest;
      return typeof digest === 'string' && parseDigest(digest) ? { ...tag, digest } : undefined;
    });
    return read.filter((tag) => tag !== undefined);
  }

  async read(digest: string): Promise<Buffer | undefined> {
    const parsed = parseDigest(digest);
    if (!parsed) return undefined;
    try {
      const object = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#keys.blob(parsed) }),
      );
      return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
    } catch {
      return undefined;
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    const parsed = parseDigest(digest);
    return parsed !== undefined && (await this.#exists(this.#keys.blob(parsed)));
  }

  async hasTag(tag: TagRow): Promise<boolean> {
    let key: string;
    try {
      key = this.#keys.record({ kind: 'tag', host: tag.host, name: tag.repo, tag: tag.tag });
    } catch {
      return false;
    }
    return this.#exists(key);
  }

  async #exists(Key: string): Promise<boolean> {
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key }));
      return true;
    } catch (error) {
      // Unsure is not gone: a row is dropped only on a clear 404.
      return !isNotFound(error);
    }
  }

  /** Every object under `prefix`, a listing page (up to 1000) at a time. */
  async *#list(prefix: string): AsyncIterable<Listed[]> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken }),
      );
      yield (page.Contents ?? []).map((object) => ({
        key: object.Key ?? '',
        size: object.Size ?? 0,
        mtimeMs: object.LastModified?.getTime() ?? 0,
      }));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }
}

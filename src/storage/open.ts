// Opening storage.type s3: the client, a first request that proves the bucket can be reached
// (a wrong endpoint, bucket or credential fails the start, naming storage.s3), and the blob
// store, records and the scan the index is rebuilt from, handed to cache/open.ts as its
// ExternalStorage.
import path from 'node:path';
import type { BlobStore } from '../cache/blobs.ts';
import type { ExternalStorage } from '../cache/open.ts';
import { CacheLayout } from '../cache/layout.ts';
import { S3BlobStore } from './blobs.ts';
import { FrontTier } from './front.ts';
import { createS3Client, probeBucket, type S3Settings } from './client.ts';
import { ObjectKeys } from './keys.ts';
import { S3Records } from './records.ts';
import { BucketScan } from './scan.ts';

export type { S3Settings } from './client.ts';

export class StorageError extends Error {
  readonly code = 'STORAGE_UNREACHABLE';
}

export interface S3Storage extends ExternalStorage {
  /** The bucket's blob store, or the front tier before it. */
  readonly blobs: BlobStore;
  /** The front tier, when storage.front.maxSize is set. */
  readonly front: FrontTier | undefined;
  /** Stops the client's connections. */
  close(): void;
}

export interface S3StorageOptions {
  /** Its tmp/ keeps the temp files of writes in progress; its front/ the front tier. */
  readonly cacheDir: string;
  /** Bytes of the local front tier; 0 or absent: none. */
  readonly frontMaxSize?: number;
  /** A read the bucket could not answer (after start): served as a miss, and reported here. */
  readonly onUnavailable?: (error: unknown) => void;
}

export async function openS3Storage(settings: S3Settings, options: S3StorageOptions): Promise<S3Storage> {
  const { cacheDir, frontMaxSize = 0, onUnavailable } = options;
  const client = createS3Client(settings);
  try {
    await probeBucket(client, settings.bucket);
  } catch (error) {
    client.destroy();
    const where = settings.endpoint ?? 'AWS S3';
    const why =
      (error as Error).name === 'NotFound'
        ? 'no such bucket'
        : (error as Error).message || (error as Error).name;
    throw new StorageError(`storage.s3: cannot use bucket ${settings.bucket} at ${where}: ${why}`, {
      cause: error,
    });
  }
  const keys = new ObjectKeys(settings.prefix);
  const records = new S3Records(client, settings.bucket, keys, onUnavailable);
  const bucket = new S3BlobStore({
    client,
    bucket: settings.bucket,
    keys,
    layout: new CacheLayout(cacheDir),
    redirect: settings.redirect,
    ...(onUnavailable ? { onUnavailable } : {}),
  });
  const front =
    frontMaxSize > 0 ? await FrontTier.open(bucket, path.join(cacheDir, 'front'), frontMaxSize) : undefined;
  return {
    blobs: front ?? bucket,
    front,
    records,
    scan: new BucketScan(client, settings.bucket, keys, records),
    close: () => client.destroy(),
  };
}

// The S3 client of storage.s3: endpoint, region and addressing from the config, credentials from
// the AWS SDK's default chain (environment, profile, SSO, web identity, instance role), and the
// classic payload signing that every S3-compatible server understands.
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';

export interface S3Settings {
  /** null: AWS S3 of the region. */
  readonly endpoint: string | null;
  readonly bucket: string;
  /** null: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1. */
  readonly region: string | null;
  readonly prefix: string;
  readonly forcePathStyle: boolean;
  readonly redirect: boolean;
}

export function createS3Client(settings: S3Settings, env: NodeJS.ProcessEnv = process.env): S3Client {
  // Read here rather than by the SDK's loader, which fails without a region instead of taking
  // the one every S3-compatible server accepts.
  const region = settings.region ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
  return new S3Client({
    ...(settings.endpoint === null ? {} : { endpoint: settings.endpoint }),
    region,
    forcePathStyle: settings.forcePathStyle,
    // The SDK's default (CRC32 trailers on every upload since 3.729) is refused by MinIO before
    // 2025, Ceph RGW before Squid, R2 and GCS on some paths: checksums only where S3 needs them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries of the SDK (3 attempts, backoff) on 5xx, throttling and dropped connections.
    maxAttempts: 3,
    // The SDK waits forever by default: a bucket that stops answering would hold fills open.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
}

/** Asks whether the bucket can be reached with these credentials; rejects with why not. */
export async function probeBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new HeadBucketCommand({ Bucket: bucket }));
}

/** Whether an SDK error says the object (or bucket) does not exist. */
export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

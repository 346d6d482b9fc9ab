// An S3 API emulator (s3rver, from npm) in-process on a loopback port 0, its files in a temp
// dir, one bucket made at start, and the AWS environment the SDK's default credential chain
// reads set to its fixed key (S3RVER/S3RVER), for the test file that uses it. Objects appear
// only whole, as on S3 (s3rver-atomic.ts), and every request is logged (a test counts uploads).
import type { IncomingMessage } from 'node:http';
import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { onTestFinished, vi } from 'vitest';
import { publishWhole } from './s3rver-atomic.ts';
import { tempDir } from './tmp.ts';

/** One request the emulator received: method, path (with the bucket) and query, body length. */
export interface S3Request {
  readonly method: string;
  readonly url: string;
  readonly bytes: number;
}

export interface TestS3 {
  readonly endpoint: string;
  /** Every request received so far, in order (a test counts the uploads of a key). */
  readonly requests: S3Request[];
  readonly bucket: string;
  /** A client of its own, for a test to look inside the bucket. */
  readonly client: S3Client;
  /** The keys in the bucket now (first 1000), with their sizes. */
  objects(prefix?: string): Promise<Array<{ key: string; size: number }>>;
  /** Stops the emulator now, cutting its open connections: the bucket becomes unreachable. */
  stop(): Promise<void>;
  /** Config for storage.s3 pointing at this emulator. */
  storage(extra?: Record<string, unknown>): { type: 's3'; s3: Record<string, unknown> };
}

export async function startS3(bucket = 'pullthrough-test'): Promise<TestS3> {
  const directory = await tempDir('pullthrough-s3-');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  publishWhole(server.store, await tempDir('pullthrough-s3-tmp-'));
  const address = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${address.port}`;
  const requests: S3Request[] = [];
  server.httpServer?.on('request', (req: IncomingMessage) => {
    // A streamed (aws-chunked) body names its length apart from the chunk framing.
    const bytes = Number(req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length'] ?? 0);
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      bytes: Number.isSafeInteger(bytes) ? bytes : 0,
    });
  });
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
  vi.stubEnv('AWS_REGION', 'us-east-1');
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  let stopped: Promise<void> | undefined;
  const stop = () => {
    server.httpServer?.closeAllConnections();
    return (stopped ??= server.close());
  };
  onTestFinished(async () => {
    client.destroy();
    await stop();
    vi.unstubAllEnvs();
  });
  return {
    endpoint,
    requests,
    bucket,
    client,
    async objects(prefix = '') {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (page.Contents ?? []).map((object) => ({ key: object.Key ?? '', size: object.Size ?? 0 }));
    },
    stop,
    storage: (extra = {}) => ({ type: 's3', s3: { endpoint, bucket, forcePathStyle: true, ...extra } }),
  };
}

/** What the emulator received for one object key (a blob's hex ends it): its uploads, by outcome. */
export interface UploadCounts {
  /** Multipart uploads begun (CreateMultipartUpload). */
  readonly created: number;
  /** Multipart uploads completed (CompleteMultipartUpload). */
  readonly completed: number;
  /** Multipart uploads aborted (AbortMultipartUpload). */
  readonly aborted: number;
  /** Whole objects sent in one PutObject (under one part). */
  readonly singlePuts: number;
  /** Bytes of every part and PutObject sent. */
  readonly bytes: number;
}

export function uploadsOf(requests: readonly S3Request[], keyEnd: string): UploadCounts {
  const of = requests.filter((r) => r.url.split('?')[0]!.endsWith(`/${keyEnd}`));
  const query = (r: S3Request) => new URLSearchParams(r.url.split('?')[1] ?? '');
  const is = (method: string, test: (q: URLSearchParams) => boolean) =>
    of.filter((r) => r.method === method && test(query(r)));
  const sent = is('PUT', () => true);
  return {
    created: is('POST', (q) => q.has('uploads')).length,
    completed: is('POST', (q) => q.has('uploadId')).length,
    aborted: is('DELETE', (q) => q.has('uploadId')).length,
    singlePuts: sent.filter((r) => !query(r).has('uploadId')).length,
    bytes: sent.reduce((sum, r) => sum + r.bytes, 0),
  };
}

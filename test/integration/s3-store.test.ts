// The S3 BlobStore and records against an S3 API emulator (s3rver): a blob becomes an object only
// once its upload is completed after the digest verified (a multipart upload for large ones),
// a wrong digest leaves nothing listed, ranges, deletes, presigned URLs and records work; the
// local front tier keeps recent blobs within its cap.
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { DiskBlobStore, type BlobStore, type BlobWriter, type ByteSource } from '../../src/cache/blobs.ts';
import { DigestMismatchError, parseDigest } from '../../src/oci/digest.ts';
import { S3BlobStore } from '../../src/storage/blobs.ts';
import { FrontTier } from '../../src/storage/front.ts';
import { ObjectKeys } from '../../src/storage/keys.ts';
import { openS3Storage } from '../../src/storage/open.ts';
import { S3Records } from '../../src/storage/records.ts';
import { startS3, type TestS3 } from '../helpers/s3.ts';
import { tempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;

function digestOf(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

async function readSource(source: ByteSource): Promise<Buffer> {
  const parts: Buffer[] = [];
  const buffer = Buffer.alloc(64 * 1024);
  for (let n = await source.read(buffer); n > 0; n = await source.read(buffer)) {
    parts.push(Buffer.from(buffer.subarray(0, n)));
  }
  await source.close();
  return Buffer.concat(parts);
}

/** A store on the emulator whose client records the name of every command it sends. */
async function storeOn(s3: TestS3, options: { redirect?: boolean; prefix?: string } = {}) {
  const dir = await tempDir();
  const disk = new DiskBlobStore(dir);
  await disk.init();
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  const commands: string[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      commands.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize' },
  );
  const keys = new ObjectKeys(options.prefix ?? 'cache/');
  const store = new S3BlobStore({
    client,
    bucket: s3.bucket,
    keys,
    layout: disk.layout,
    redirect: options.redirect ?? false,
  });
  return { store, commands, keys, client, tmp: disk.layout.tmpDir };
}

describe('S3 blob store', () => {
  it('uploads a large blob as a multipart upload, visible only once committed', async () => {
    const s3 = await startS3();
    const { store, commands, tmp } = await storeOn(s3);
    const content = randomBytes(20 * MiB + 3);
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    for (let at = 0; at < content.length; at += MiB) await writer.write(content.subarray(at, at + MiB));
    // Parts went up while the bytes streamed in, but no object exists before the commit.
    expect(commands).toContain('CreateMultipartUploadCommand');
    expect(commands).toContain('UploadPartCommand');
    expect(await s3.objects()).toEqual([]);
    expect(await store.stat(digest)).toBeUndefined();

    await writer.commit(content.length);
    expect(commands.at(-1)).toBe('CompleteMultipartUploadCommand');
    expect(commands).not.toContain('PutObjectCommand');
    const hex = digest.slice('sha256:'.length);
    expect(await s3.objects()).toEqual([
      { key: `cache/blobs/sha256/${hex.slice(0, 2)}/${hex}`, size: content.length },
    ]);
    expect(await store.stat(digest)).toEqual({ size: content.length });
    expect(digestOf(await store.readAll(digest))).toBe(digest);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('stores the bytes it was given when the caller reuses its buffer after each write', async () => {
    // cache/write-behind.ts hands the writer pooled slabs and reuses them once a write settles.
    const s3 = await startS3();
    const { store } = await storeOn(s3);
    const content = randomBytes(9 * MiB + 5);
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    const slab = Buffer.alloc(256 * 1024);
    for (let at = 0; at < content.length; at += slab.length) {
      const n = content.copy(slab, 0, at, at + slab.length);
      await writer.write(slab.subarray(0, n));
      slab.fill(0xee); // what the pool's next user writes into it
    }
    await writer.commit(content.length);
    expect(digestOf(await store.readAll(digest))).toBe(digest);
  });

  it('stores a small blob with one PUT at commit, and lists it', async () => {
    const s3 = await startS3();
    const { store, commands } = await storeOn(s3);
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    await writer.write(content);
    expect(await s3.objects()).toEqual([]);
    await writer.commit();
    expect(commands.filter((c) => c !== 'HeadObjectCommand')).toEqual(['PutObjectCommand']);
    const listed = [];
    for await (const blob of store.list()) listed.push(blob);
    expect(listed).toEqual([{ digest, size: 1000 }]);
  });

  it('aborts on a wrong digest: the commit rejects and nothing is listed, large or small', async () => {
    const s3 = await startS3();
    const { store, commands, tmp } = await storeOn(s3);
    for (const size of [12 * MiB, 100]) {
      const claimed = digestOf(randomBytes(32));
      const writer = await store.begin(claimed);
      const content = randomBytes(size);
      for (let at = 0; at < size; at += MiB) await writer.write(content.subarray(at, at + MiB));
      await expect(writer.commit(size)).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await store.stat(claimed)).toBeUndefined();
    }
    expect(await s3.objects()).toEqual([]);
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    expect(commands).not.toContain('PutObjectCommand');
    expect(await readdir(tmp)).toEqual([]);
  });

  it('aborts an upload the caller gives up on, after its parts, and commits nothing of it', async () => {
    const s3 = await startS3();
    const { store, commands } = await storeOn(s3);
    const content = randomBytes(20 * MiB);
    const writer = await store.begin(digestOf(content), { callerVerifies: true });
    // The body drains only as parts are taken: 19 MiB in means the upload has begun.
    for (let at = 0; at < 19 * MiB; at += MiB) await writer.write(content.subarray(at, at + MiB));
    expect(commands).toContain('CreateMultipartUploadCommand');
    await writer.abort();
    await writer.abort();
    // Sent once the parts in flight are done (s3rver refuses it: its stray parts are never listed).
    expect(commands.at(-1)).toBe('AbortMultipartUploadCommand');
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    expect(await s3.objects()).toEqual([]);
  });

  it('sees an object only whole, never while its upload is written (as S3; helpers/s3rver-atomic.ts)', async () => {
    const s3 = await startS3();
    const { store } = await storeOn(s3);
    const content = randomBytes(24 * MiB);
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    await writer.write(content);
    let done = false;
    const committed = writer.commit(content.length).finally(() => (done = true));
    const seen = new Set<number | undefined>();
    while (!done) seen.add((await store.stat(digest))?.size);
    await committed;
    expect([...seen].filter((size) => size !== undefined && size !== content.length)).toEqual([]);
    expect(await store.stat(digest)).toEqual({ size: content.length });
  });

  it('reads ranges, deletes, and answers ENOENT for a blob that is gone', async () => {
    const s3 = await startS3();
    const { store } = await storeOn(s3);
    const content = randomBytes(300_000);
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    await writer.write(content);
    await writer.commit();
    expect(await readSource(await store.open(digest, { start: 1000, end: 1999 }))).toEqual(
      content.subarray(1000, 2000),
    );
    expect(await readSource(await store.open(digest))).toEqual(content);
    await store.delete(digest);
    expect(await store.stat(digest)).toBeUndefined();
    await expect(store.open(digest)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await s3.objects()).toEqual([]);
  });

  it('gives a presigned URL that a plain HTTP client can read, only with redirect on', async () => {
    const s3 = await startS3();
    const content = randomBytes(5000);
    const digest = digestOf(content);
    const { store } = await storeOn(s3, { redirect: true });
    const writer = await store.begin(digest);
    await writer.write(content);
    await writer.commit();
    const url = await store.location(digest);
    expect(url).toMatch(/X-Amz-Signature=/);
    const response = await fetch(url!, { headers: { range: 'bytes=0-99' } });
    expect(response.status).toBe(206);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(content.subarray(0, 100));
    const { store: streaming } = await storeOn(s3, { redirect: false });
    expect(await streaming.location(digest)).toBeUndefined();
  });

  it('keeps manifest and tag records as JSON objects under the prefix', async () => {
    const s3 = await startS3();
    const { client, keys } = await storeOn(s3, { prefix: 'p/' });
    const records = new S3Records(client, s3.bucket, keys);
    const tag = { kind: 'tag', host: 'registry.test:443', name: 'e2e/small', tag: 'v1' } as const;
    const manifest = { kind: 'manifest', digest: parseDigest(digestOf(Buffer.from('m')))! } as const;
    expect(await records.read(tag)).toBeUndefined();
    await records.write(tag, { digest: 'sha256:abc' });
    await records.write(manifest, { mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(await records.read(tag)).toEqual({ digest: 'sha256:abc' });
    expect((await s3.objects()).map((o) => o.key).sort()).toEqual([
      `p/manifests/sha256/${manifest.digest.hex.slice(0, 2)}/${manifest.digest.hex}.json`,
      'p/tags/registry.test:443/e2e/small/_tags/v1.json',
    ]);
    await records.remove(tag);
    expect(await records.read(tag)).toBeUndefined();
    expect(() => keys.record({ ...tag, host: '../x' })).toThrow(TypeError);
  });

  it('refuses to open a bucket that does not exist, naming storage.s3', async () => {
    const s3 = await startS3();
    const dir = await tempDir();
    const settings = {
      endpoint: s3.endpoint,
      bucket: 'no-such-bucket',
      region: null,
      prefix: '',
      forcePathStyle: true,
      redirect: false,
    };
    await expect(openS3Storage(settings, { cacheDir: path.join(dir, 'cache') })).rejects.toThrow(
      /^storage\.s3: cannot use bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+: /,
    );
    const opened = await openS3Storage(
      { ...settings, bucket: s3.bucket },
      { cacheDir: path.join(dir, 'cache') },
    );
    opened.close();
  });
});

describe('S3 blob writer of a replica that does not store the blob (shares: no)', () => {
  const uploads = (commands: string[]) =>
    commands.filter((c) => /MultipartUpload|UploadPart|PutObject/.test(c));

  async function write(writer: BlobWriter, content: Buffer, from = 0, to = content.length) {
    for (let at = from; at < to; at += MiB) await writer.write(content.subarray(at, Math.min(at + MiB, to)));
  }

  it('keeps the bytes local and uploads nothing when the blob is in the bucket by its commit', async () => {
    const s3 = await startS3();
    const holder = await storeOn(s3);
    const follower = await storeOn(s3);
    const content = randomBytes(12 * MiB + 7);
    const digest = digestOf(content);
    const held = await holder.store.begin(digest);
    const followed = await follower.store.begin(digest, { callerVerifies: true, shares: () => false });
    await write(held, content);
    await write(followed, content);
    expect(await readdir(follower.tmp)).toHaveLength(1); // the temp file its readers tail
    await held.commit(content.length);
    await followed.commit();
    expect(uploads(follower.commands)).toEqual([]);
    expect(follower.commands).toEqual(['HeadObjectCommand']);
    expect(await readdir(follower.tmp)).toEqual([]);
    expect(digestOf(await follower.store.readAll(digest))).toBe(digest);
  });

  it('uploads everything, from its temp file first, once told it stores the blob mid-way', async () => {
    const s3 = await startS3();
    const { store, commands } = await storeOn(s3);
    const content = randomBytes(20 * MiB + 11);
    const digest = digestOf(content);
    let shares = false;
    const writer = await store.begin(digest, { shares: () => shares });
    await write(writer, content, 0, 13 * MiB);
    expect(uploads(commands)).toEqual([]);
    shares = true; // the holder died: this replica fetches the rest upstream
    await write(writer, content, 13 * MiB);
    await writer.commit(content.length);
    expect(commands.filter((c) => c.includes('MultipartUpload'))).toEqual([
      'CreateMultipartUploadCommand',
      'CompleteMultipartUploadCommand',
    ]);
    expect(digestOf(await store.readAll(digest))).toBe(digest);
  });

  it('uploads its verified copy after all when the bucket still lacks the blob at commit', async () => {
    const s3 = await startS3();
    const { store, commands, tmp } = await storeOn(s3);
    for (const size of [9 * MiB + 1, 1000]) {
      const content = randomBytes(size);
      const digest = digestOf(content);
      const writer = await store.begin(digest, { shares: () => false });
      await write(writer, content);
      await writer.commit(size);
      expect(digestOf(await store.readAll(digest))).toBe(digest);
    }
    expect(commands).toContain('CompleteMultipartUploadCommand');
    expect(commands).toContain('PutObjectCommand');
    expect(await readdir(tmp)).toEqual([]);
  });

  it('publishes nothing of a wrong digest, taken over or not', async () => {
    const s3 = await startS3();
    const { store, commands, tmp } = await storeOn(s3);
    for (const takeOver of [false, true]) {
      const claimed = digestOf(randomBytes(32));
      let shares = false;
      const writer = await store.begin(claimed, { shares: () => shares });
      const content = randomBytes(10 * MiB);
      await write(writer, content, 0, 5 * MiB);
      shares = takeOver;
      await write(writer, content, 5 * MiB);
      await expect(writer.commit(content.length)).rejects.toBeInstanceOf(DigestMismatchError);
    }
    expect(commands).not.toContain('CompleteMultipartUploadCommand');
    expect(commands).not.toContain('PutObjectCommand');
    expect(await s3.objects()).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('with a front tier, keeps the blob there only', async () => {
    const s3 = await startS3();
    const holder = await storeOn(s3);
    const follower = await storeOn(s3);
    const front = await FrontTier.open(
      follower.store,
      path.join(path.dirname(follower.tmp), 'front'),
      10 * MiB,
    );
    const content = randomBytes(3 * MiB);
    const digest = digestOf(content);
    const held = await holder.store.begin(digest);
    await write(held, content);
    await held.commit(content.length);
    const followed = await front.begin(digest, { shares: () => false });
    await write(followed, content);
    await followed.commit(content.length);
    expect(uploads(follower.commands)).toEqual([]);
    expect(front.has(digest)).toBe(true);
    expect(digestOf(await front.readAll(digest))).toBe(digest);
  });
});

describe('front tier', () => {
  async function frontOn(s3: TestS3, maxSize: number) {
    const { store, tmp } = await storeOn(s3);
    const dir = path.join(path.dirname(tmp), 'front');
    return { bucket: store, front: await FrontTier.open(store, dir, maxSize), dir };
  }

  async function put(store: BlobStore, content: Buffer): Promise<string> {
    const digest = digestOf(content);
    const writer = await store.begin(digest);
    await writer.write(content);
    await writer.commit(content.length);
    return digest;
  }

  it('keeps what a commit stored on local disk, and serves it from there', async () => {
    const s3 = await startS3();
    const { front, dir } = await frontOn(s3, 10 * MiB);
    const content = randomBytes(3 * MiB);
    const digest = await put(front, content);
    expect(front.has(digest)).toBe(true);
    expect(await readdir(path.join(dir, 'sha256'))).toEqual([digest.slice('sha256:'.length)]);
    // Gone from the bucket behind its back: the front still answers.
    await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: (await s3.objects())[0]!.key }));
    expect(await front.stat(digest)).toEqual({ size: content.length });
    expect(await readSource(await front.open(digest, { start: 10, end: 19 }))).toEqual(
      content.subarray(10, 20),
    );
    expect(await front.readAll(digest)).toEqual(content);
  });

  it('drops the least recently used past its cap, and keeps nothing of a failed commit', async () => {
    const s3 = await startS3();
    const { front, dir } = await frontOn(s3, 3000);
    const [a, b] = [randomBytes(1200), randomBytes(1200)];
    const da = await put(front, a);
    const db = await put(front, b);
    await readSource(await front.open(da)); // a is now more recent than b
    const dc = await put(front, randomBytes(1200));
    expect([front.has(da), front.has(db), front.has(dc)]).toEqual([true, false, true]);
    expect(front.bytes).toBe(2400);
    expect((await readdir(path.join(dir, 'sha256'))).length).toBe(2);
    // Still in the bucket, where it is read from (and copied back in).
    expect(await readSource(await front.open(db))).toEqual(b);
    await front.idle();
    expect(front.has(db)).toBe(true);

    const writer = await front.begin(digestOf(randomBytes(8)));
    await writer.write(randomBytes(100));
    await expect(writer.commit(100)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(front.bytes).toBeLessThanOrEqual(3000);
  });

  it('copies a blob read whole from the bucket, verified, and finds its files again at start', async () => {
    const s3 = await startS3();
    const { bucket, front, dir } = await frontOn(s3, 10 * MiB);
    const content = randomBytes(2 * MiB);
    const digest = await put(bucket, content);
    expect(front.has(digest)).toBe(false);
    await readSource(await front.open(digest, { start: 0, end: 9 })); // a range: not copied
    await front.idle();
    expect(front.has(digest)).toBe(false);
    expect(await readSource(await front.open(digest))).toEqual(content);
    await front.idle();
    expect(front.has(digest)).toBe(true);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);

    const reopened = await FrontTier.open(bucket, dir, 10 * MiB);
    expect(reopened.has(digest)).toBe(true);
    expect(reopened.bytes).toBe(content.length);
    await reopened.delete(digest);
    expect(reopened.has(digest)).toBe(false);
    expect(await readdir(path.join(dir, 'sha256'))).toEqual([]);
    expect(await s3.objects()).toEqual([]);
  });
});

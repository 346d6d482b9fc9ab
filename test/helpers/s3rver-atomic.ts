// s3rver writes an object in place, truncating its file first, and answers HEAD and GET from
// whatever that file holds meanwhile: a read during a PutObject or CompleteMultipartUpload sees
// an empty or partial object with a 200. Real S3 (and MinIO, Ceph) show an object only whole,
// once its write completed. This makes the emulator publish as they do: temp file, then rename.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3rverStore } from 's3rver';

/** Replaces `store.putObject` (which CompleteMultipartUpload also calls); temps go in `tempDirectory`. */
export function publishWhole(store: S3rverStore, tempDirectory: string): void {
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    const temp = path.join(tempDirectory, randomBytes(8).toString('hex'));
    const md5 = createHash('md5');
    let size = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        md5.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    await pipeline(source, count, createWriteStream(temp));
    const hex = md5.digest('hex');
    await mkdir(path.dirname(objectPath), { recursive: true });
    // Metadata first: until the rename, a read finds no object file and answers 404.
    await store.putMetadata(object.bucket, object.key, object.metadata, hex);
    await rename(temp, objectPath);
    return { size, md5: hex };
  };
}

// Blob files for the benchmarks: incompressible bytes (an AES-128-CTR keystream under a random
// key, as shared/notes/real-clients.md §8 makes layers), named by their sha256 digest so that the
// upstream nginx can serve them at /v2/<name>/blobs/<digest> straight from the directory.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';

export interface Blob {
  readonly digest: string;
  readonly size: number;
  readonly file: string;
}

const CHUNK = 8 * 1024 * 1024;

export async function writeBlob(dir: string, size: number): Promise<Blob> {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  const hash = createHash('sha256');
  const temp = path.join(dir, `blob-${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'w');
  try {
    for (let written = 0; written < size;) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(CHUNK, size - written)));
      hash.update(chunk);
      await handle.write(chunk);
      written += chunk.length;
    }
  } finally {
    await handle.close();
  }
  const digest = `sha256:${hash.digest('hex')}`;
  const file = path.join(dir, digest);
  await rename(temp, file);
  return { digest, size, file };
}

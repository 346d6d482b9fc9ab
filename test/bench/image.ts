// A test image in an OCI layout, for skopeo to push to the upstream registry: a few layers, each
// a tar of one file of incompressible bytes (AES-128-CTR keystream under a random key, as
// blob.ts), gzip-wrapped at level 0 (stored blocks: a valid gzip stream that costs only its CRC,
// so skopeo pushes it as it is instead of compressing the layer itself), a config and a manifest.
import { createCipheriv, createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { USTAR_END, ustarHeader, ustarPadding } from '../helpers/ustar.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const CHUNK = 4 * 1024 * 1024;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export interface Image {
  /** `oci:<layout>:<name>`, for skopeo to push from. */
  readonly source: string;
  readonly manifest: Descriptor;
  /** The config and the layers: what a pull fetches from /blobs/. */
  readonly blobs: readonly Descriptor[];
  /** Sum of `blobs`' sizes. */
  readonly blobBytes: number;
}

/** The tar of one file of `size` random bytes, in chunks. */
function* tarOfRandomFile(name: string, size: number): Generator<Buffer> {
  yield ustarHeader(name, size);
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let written = 0; written < size; written += CHUNK)
    yield cipher.update(zeros.subarray(0, Math.min(CHUNK, size - written)));
  yield ustarPadding(size);
  yield USTAR_END;
}

function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

async function putBlob(blobs: string, mediaType: string, data: Buffer): Promise<Descriptor> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(path.join(blobs, hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

/** Writes an image with one layer per entry of `layerSizes` (bytes of random file content). */
export async function writeImage(
  layoutDir: string,
  name: string,
  layerSizes: readonly number[],
): Promise<Image> {
  const blobs = path.join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of layerSizes.entries()) {
    const tarHash = createHash('sha256');
    const gzHash = createHash('sha256');
    const temp = path.join(blobs, `layer-${randomBytes(4).toString('hex')}.tmp`);
    let bytes = 0;
    await pipeline(
      tarOfRandomFile(`layer-${i}.bin`, size),
      hashing(tarHash),
      createGzip({ level: 0 }),
      hashing(gzHash),
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          done(null, chunk);
        },
      }),
      createWriteStream(temp),
    );
    const hex = gzHash.digest('hex');
    await rename(temp, path.join(blobs, hex));
    layers.push({ mediaType: OCI_LAYER_GZIP, digest: `sha256:${hex}`, size: bytes });
    diffIds.push(`sha256:${tarHash.digest('hex')}`);
  }
  const epoch = '1970-01-01T00:00:00Z';
  const config = await putBlob(
    blobs,
    OCI_CONFIG,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: epoch,
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    ),
  );
  const manifest = await putBlob(
    blobs,
    OCI_MANIFEST,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers })),
  );
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  // One image per layout directory: index.json names only this one.
  await writeFile(
    path.join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': name } }],
    }),
  );
  const all = [config, ...layers];
  return {
    source: `oci:${layoutDir}:${name}`,
    manifest,
    blobs: all,
    blobBytes: all.reduce((sum, blob) => sum + blob.size, 0),
  };
}

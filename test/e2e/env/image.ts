// Deterministic test images, made without network: each is one gzip layer holding one file of
// AES-128-CTR keystream (incompressible, seeded by the file name), a config with `created` at the
// epoch, an OCI manifest, and an entry in an OCI layout's index.json. Same bytes on every run.
// It does not push: world.ts does that with `skopeo copy oci:DIR:NAME docker://…`.
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { USTAR_END, ustarHeader, ustarPadding } from '../../helpers/ustar.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface OciIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: unknown[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface TestImage {
  /** Name inside the OCI layout (`oci:DIR:NAME`). */
  layoutName: string;
  /** Repository path on the registry, e.g. `e2e/small`. */
  repository: string;
  tag: string;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor & { diffId: string };
}

export interface ImageSpec {
  repository: string;
  tag: string;
  /** The one file in the layer (at the root of the image's filesystem). */
  file: string;
  size: number;
}

/** `size` bytes of the AES-128-CTR keystream under a key derived from `seed`. */
export function keystream(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** A ustar archive of one regular file: owner root, mode 0644, mtime 0. */
export function tarOneFile(name: string, data: Buffer): Buffer {
  return Buffer.concat([ustarHeader(name, data.length), data, ustarPadding(data.length), USTAR_END]);
}

/** JSON with sorted keys and no whitespace, so digests never depend on key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** Writes the image's blobs into the OCI layout at `layoutDir` and adds it to index.json. */
export function addImage(layoutDir: string, spec: ImageSpec): TestImage {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const putBlob = (mediaType: string, data: Buffer): Descriptor => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest.slice('sha256:'.length)), data);
    return { mediaType, digest, size: data.length };
  };

  const tar = tarOneFile(spec.file, keystream(`${spec.repository}/${spec.file}`, spec.size));
  // Level 1 as in `gzip -n -1`; zlib writes mtime 0 and no file name, so the output is stable.
  const layer = { ...putBlob(OCI_LAYER_GZIP, gzipSync(tar, { level: 1 })), diffId: sha256(tar) };
  const epoch = '1970-01-01T00:00:00Z';
  const config = putBlob(
    OCI_CONFIG,
    Buffer.from(
      canonicalJson({
        architecture: goArch(),
        os: 'linux',
        created: epoch,
        config: { Cmd: [`/${spec.file}`] },
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        history: [{ created: epoch, created_by: `pullthrough e2e: ${spec.file}` }],
      }),
    ),
  );
  const manifest = putBlob(
    OCI_MANIFEST,
    Buffer.from(
      canonicalJson({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config,
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      }),
    ),
  );

  const layoutName = `${spec.repository.replaceAll('/', '-')}-${spec.tag}`;
  writeFileSync(join(layoutDir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  const indexFile = join(layoutDir, 'index.json');
  const index: OciIndex = existsSync(indexFile)
    ? (JSON.parse(readFileSync(indexFile, 'utf8')) as OciIndex)
    : { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  index.manifests.push({ ...manifest, annotations: { 'org.opencontainers.image.ref.name': layoutName } });
  writeFileSync(indexFile, canonicalJson(index));
  return { layoutName, repository: spec.repository, tag: spec.tag, manifest, config, layer };
}

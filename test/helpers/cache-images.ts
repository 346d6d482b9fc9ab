// Images written into a real cache directory through the real stores (blobs.ts, manifests.ts),
// and recorded in a CacheIndex the way the request path does, for index and eviction tests.
import { digestOf } from '../../src/oci/digest.ts';
import { DiskBlobStore } from '../../src/cache/blobs.ts';
import type { CacheIndex } from '../../src/cache/index.ts';
import { ManifestStore } from '../../src/cache/manifests.ts';

export const HOST = 'registry.example:443';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export interface CachedImage {
  readonly manifest: string;
  readonly config: string;
  readonly layers: readonly string[];
  /** Bytes of manifest + config + layers. */
  readonly size: number;
  /** Every digest of the image. */
  readonly digests: readonly string[];
}

export interface ImageSpec {
  readonly repository: string;
  readonly tag?: string;
  readonly host?: string;
  /** Layer contents; equal contents are one shared blob. */
  readonly layers: ReadonlyArray<string | Buffer>;
}

export class CacheImages {
  readonly blobs: DiskBlobStore;
  readonly manifests: ManifestStore;
  /** Where writes are recorded; undefined: files only (as if the index lost them). */
  index: CacheIndex | undefined;

  private constructor(root: string) {
    this.blobs = new DiskBlobStore(root);
    this.manifests = new ManifestStore(this.blobs.layout, this.blobs);
  }

  static async create(root: string, index?: CacheIndex): Promise<CacheImages> {
    const images = new CacheImages(root);
    await images.blobs.init();
    images.index = index;
    return images;
  }

  async blob(content: string | Buffer, host = HOST): Promise<string> {
    const bytes = Buffer.from(content);
    const digest = digestOf(bytes);
    const writer = await this.blobs.begin(digest);
    await writer.write(bytes);
    await writer.commit(bytes.length);
    this.index?.recordBlob(digest, bytes.length, { host });
    return digest;
  }

  async image(spec: ImageSpec): Promise<CachedImage> {
    const host = spec.host ?? HOST;
    const configContent = JSON.stringify({ architecture: 'amd64', os: 'linux', repository: spec.repository });
    const config = await this.blob(configContent, host);
    const layers: string[] = [];
    for (const layer of spec.layers) layers.push(await this.blob(layer, host));
    const descriptor = (digest: string, size: number) => ({ mediaType: 'x', digest, size });
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: descriptor(config, configContent.length),
        layers: layers.map((digest, i) => descriptor(digest, Buffer.from(spec.layers[i] ?? '').length)),
      }),
    );
    const manifest = await this.manifest(content, OCI_MANIFEST, spec.repository, host, spec.tag);
    const unique = new Map<string, number>([[config, configContent.length]]);
    spec.layers.forEach((layer, i) => unique.set(layers[i] ?? '', Buffer.from(layer).length));
    const size = content.length + [...unique.values()].reduce((a, b) => a + b, 0);
    return { manifest, config, layers, size, digests: [manifest, ...unique.keys()] };
  }

  /** A multi-platform index over `images`, tagged. */
  async imageIndex(
    images: readonly CachedImage[],
    repository: string,
    tag: string,
    host = HOST,
  ): Promise<string> {
    const content = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: images.map((image) => ({ mediaType: OCI_MANIFEST, digest: image.manifest, size: 1 })),
      }),
    );
    return this.manifest(content, OCI_INDEX, repository, host, tag);
  }

  async manifest(content: Buffer, mediaType: string, repository: string, host: string, tag?: string) {
    const digest = digestOf(content);
    await this.manifests.put(digest, mediaType, content);
    this.index?.recordManifest(digest, content, { host, repository });
    if (tag !== undefined) {
      await this.manifests.putTag(host, repository, tag, {
        digest,
        mediaType,
        size: content.length,
        checkedAt: 0,
      });
      this.index?.recordTag(host, repository, tag, digest);
    }
    return digest;
  }
}

// The on-disk layout of the cache directory. Every path the cache writes is built here, only
// from validated digests, so nothing built from a request can leave the cache directory.
//
//   <cache>/
//     blobs/<algorithm>/<first 2 hex>/<hex>   verified content: layers, configs, and manifests
//                                             fetched by digest; immutable once renamed here
//     tmp/<algorithm>-<hex>.<random>          fills in progress, hashed while written; renamed
//                                             into blobs/ only when digest and size match;
//                                             removed at start (a crash mid-fill leaves nothing
//                                             that is ever served)
import path from 'node:path';
import type { ParsedDigest } from '../oci/digest.ts';

export class CacheLayout {
  readonly root: string;
  readonly blobsDir: string;
  readonly tmpDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.blobsDir = path.join(this.root, 'blobs');
    this.tmpDir = path.join(this.root, 'tmp');
  }

  blobPath(digest: ParsedDigest): string {
    return path.join(this.blobsDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  tempPath(digest: ParsedDigest, unique: string): string {
    return path.join(this.tmpDir, `${digest.algorithm}-${digest.hex}.${unique}`);
  }
}

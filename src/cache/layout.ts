// The on-disk layout of the cache directory. Every path the cache writes is built here, only
// from validated digests, so nothing built from a request can leave the cache directory.
//
//   <cache>/
//     blobs/<algorithm>/<first 2 hex>/<hex>   verified content: layers, configs, and manifests
//                                             fetched by digest; immutable once renamed here
//     manifests/<algorithm>/<2 hex>/<hex>.json  {mediaType} of a manifest whose bytes are in blobs/
//     tags/<host:port>/<repository>/<tag>.json    {digest, mediaType, size, checkedAt}: what a tag
//                                             resolved to when upstream was last asked
//     public/<algorithm>/<2 hex>/<hex>         empty: upstream served this digest to a request
//                                             without credentials, so anyone may be served it
//     tmp/<algorithm>-<hex>.<random>          fills in progress, hashed while written; renamed
//                                             into blobs/ only when digest and size match;
//                                             removed at start (a crash mid-fill leaves nothing
//                                             that is ever served); small JSON files are also
//                                             written here first and renamed into place
import path from 'node:path';
import type { ParsedDigest } from '../oci/digest.ts';
import { isName, isTag } from '../oci/reference.ts';

const HOST_KEY = /^[a-z0-9._\-[\]:]{1,300}$/;

export class CacheLayout {
  readonly root: string;
  readonly blobsDir: string;
  readonly tmpDir: string;
  readonly manifestsDir: string;
  readonly tagsDir: string;
  readonly publicDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.blobsDir = path.join(this.root, 'blobs');
    this.tmpDir = path.join(this.root, 'tmp');
    this.manifestsDir = path.join(this.root, 'manifests');
    this.tagsDir = path.join(this.root, 'tags');
    this.publicDir = path.join(this.root, 'public');
  }

  publicMarkPath(digest: ParsedDigest): string {
    return path.join(this.publicDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  manifestMetaPath(digest: ParsedDigest): string {
    return path.join(this.manifestsDir, digest.algorithm, digest.hex.slice(0, 2), `${digest.hex}.json`);
  }

  /** `host` is `host:port` as the proxy names destinations; name and tag follow the spec grammar. */
  tagPath(host: string, name: string, tag: string): string {
    if (!HOST_KEY.test(host) || host.includes('..') || !isName(name) || !isTag(tag)) {
      throw new TypeError('refusing to build a tag path from an invalid host, name or tag');
    }
    return path.join(this.tagsDir, host, name, `${tag}.json`);
  }

  blobPath(digest: ParsedDigest): string {
    return path.join(this.blobsDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  tempPath(digest: ParsedDigest, unique: string): string {
    return path.join(this.tmpDir, `${digest.algorithm}-${digest.hex}.${unique}`);
  }
}

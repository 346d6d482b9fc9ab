// The on-disk layout of the cache directory. Every path the cache writes is built here, only
// from validated digests, so nothing built from a request can leave the cache directory.
//
//   <cache>/
//     blobs/<algorithm>/<first 2 hex>/<hex>   verified content: layers, configs, and manifests
//                                             fetched by digest; immutable once renamed here
//     manifests/<algorithm>/<2 hex>/<hex>.json  {mediaType} of a manifest whose bytes are in blobs/
//     tags/<host:port>/<repository>/_tags/<tag>.json  {digest, mediaType, size, checkedAt}: what
//                                             a tag resolved to when upstream was last asked;
//                                             `_tags` because no repository path component starts
//                                             with `_`, so the tags of `a` and the repository
//                                             `a/latest.json` never share a path (distribution's
//                                             storage uses `_manifests` and `_layers` alike)
//     tags/<host:port>/<repository>/_referrers/<algorithm>-<hex>[.<32 hex>].json  the same
//                                             record for the OCI 1.1 referrers index of that
//                                             subject digest (the index's bytes are a manifest
//                                             above); the suffix is a hash of ?artifactType=;
//                                             removed with their subject (eviction-files.ts)
//     public/<2 hex>/<sha256 hex of host, repository and digest>   empty; its mtime is when
//                                             upstream last served that digest of that
//                                             repository to a request without credentials
//     index.db (+ -wal, -shm)                 the cache index (index.ts): sizes, last use, references,
//                                             tags; rebuilt from the files above when missing
//     tmp/<algorithm>-<hex>.<random>          fills in progress, hashed while written; renamed
//                                             into blobs/ only when digest and size match;
//                                             removed at start (a crash mid-fill leaves nothing
//                                             that is ever served); small JSON files are also
//                                             written here first (json.<random>) and renamed
//                                             into place; probe.<random> is the write test at
//                                             start (init.ts). A write the disk refuses
//                                             removes its file at once
//     front/                                  with storage.type s3 and storage.front.maxSize:
//                                             the local front tier (storage/front.ts)
import { createHash } from 'node:crypto';
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
  readonly indexFile: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.blobsDir = path.join(this.root, 'blobs');
    this.tmpDir = path.join(this.root, 'tmp');
    this.manifestsDir = path.join(this.root, 'manifests');
    this.tagsDir = path.join(this.root, 'tags');
    this.publicDir = path.join(this.root, 'public');
    this.indexFile = path.join(this.root, 'index.db');
  }

  /** `key` is a sha256 hex string (public-marks.ts), never request text. */
  publicMarkPath(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key))
      throw new TypeError('refusing to build a public mark path from a non-hash key');
    return path.join(this.publicDir, key.slice(0, 2), key);
  }

  manifestMetaPath(digest: ParsedDigest): string {
    return path.join(this.manifestsDir, digest.algorithm, digest.hex.slice(0, 2), `${digest.hex}.json`);
  }

  /** `host` is `host:port` as the proxy names destinations; name and tag follow the spec grammar. */
  tagPath(host: string, name: string, tag: string): string {
    if (!HOST_KEY.test(host) || host.includes('..') || !isName(name) || !isTag(tag)) {
      throw new TypeError('refusing to build a tag path from an invalid host, name or tag');
    }
    return path.join(this.tagsDir, host, name, '_tags', `${tag}.json`);
  }

  /** The referrers record of `subject` in a repository, per artifactType filter (none: ''). */
  referrersPath(host: string, name: string, subject: ParsedDigest, artifactType: string): string {
    // The filter is request text: only its hash reaches the file name.
    const filter =
      artifactType === '' ? '' : `.${createHash('sha256').update(artifactType).digest('hex').slice(0, 32)}`;
    return path.join(this.referrersDir(host, name), `${referrersPrefix(subject)}${filter}.json`);
  }

  /** The directory of a repository's referrers records (purge and eviction remove from it). */
  referrersDir(host: string, name: string): string {
    if (!HOST_KEY.test(host) || host.includes('..') || !isName(name)) {
      throw new TypeError('refusing to build a referrers path from an invalid host or name');
    }
    return path.join(this.tagsDir, host, name, '_referrers');
  }

  blobPath(digest: ParsedDigest): string {
    return path.join(this.blobsDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  tempPath(digest: ParsedDigest, unique: string): string {
    return path.join(this.tmpDir, `${digest.algorithm}-${digest.hex}.${unique}`);
  }
}

/** How every referrers record file of `subject` is named before `.json` or `.<filter hash>.json`. */
export function referrersPrefix(subject: ParsedDigest): string {
  return `${subject.algorithm}-${subject.hex}`;
}

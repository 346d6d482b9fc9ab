// The object keys of the cache in a bucket, built here only, from validated digests, hosts,
// names and tags (the disk layout's rules, cache/layout.ts), under the configured prefix:
//
//   <prefix>blobs/<algorithm>/<first 2 hex>/<hex>          verified content; written only by a
//                                                         completed upload (never partial)
//   <prefix>manifests/<algorithm>/<2 hex>/<hex>.json       {mediaType} of a manifest in blobs/
//   <prefix>tags/<host:port>/<repository>/_tags/<tag>.json  what a tag last resolved to
//   <prefix>tags/<host:port>/<repository>/_referrers/<algorithm>-<hex>[.<filter hash>].json
//                                                         a referrers index
//
// The two hex characters spread keys over prefixes, which S3 scales request rates by.
import { parseDigest, type ParsedDigest } from '../oci/digest.ts';
import type { RecordKey } from '../cache/records.ts';
import { CacheLayout } from '../cache/layout.ts';

/** Only for its validation of host, name and tag: a path is never used as such. */
const CHECK = new CacheLayout('/');

export class ObjectKeys {
  readonly prefix: string;

  /** `prefix` is empty or ends with `/` (the config normalises it). */
  constructor(prefix: string) {
    this.prefix = prefix;
  }

  get blobsPrefix(): string {
    return `${this.prefix}blobs/`;
  }

  blob(digest: ParsedDigest): string {
    return `${this.blobsPrefix}${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`;
  }

  record(key: RecordKey): string {
    if (key.kind === 'manifest') {
      const { algorithm, hex } = key.digest;
      return `${this.prefix}manifests/${algorithm}/${hex.slice(0, 2)}/${hex}.json`;
    }
    if (key.kind === 'referrers') {
      // The layout validates host and name and hashes the filter into the file name.
      const file = CHECK.referrersPath(key.host, key.name, key.subject, key.artifactType);
      return `${this.prefix}tags/${key.host}/${key.name}/_referrers/${file.slice(file.lastIndexOf('/') + 1)}`;
    }
    CHECK.tagPath(key.host, key.name, key.tag); // throws on what the layout would refuse
    return `${this.prefix}tags/${key.host}/${key.name}/_tags/${key.tag}.json`;
  }

  /** The digest a blob key names, or undefined for any other key. */
  digestOf(key: string): string | undefined {
    if (!key.startsWith(this.blobsPrefix)) return undefined;
    const [algorithm, fan, hex, ...rest] = key.slice(this.blobsPrefix.length).split('/');
    if (rest.length > 0 || !hex || fan !== hex.slice(0, 2)) return undefined;
    return parseDigest(`${algorithm}:${hex}`) ? `${algorithm}:${hex}` : undefined;
  }
}

export function mustParse(digest: string): ParsedDigest {
  const parsed = parseDigest(digest);
  if (!parsed) throw new TypeError(`not a supported digest: ${JSON.stringify(digest).slice(0, 100)}`);
  return parsed;
}

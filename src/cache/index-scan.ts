// Walks the cache layout (layout.ts) and says what the files hold: blob files with their size
// and mtime, manifest meta files, tag records; ContentScan is that view for any store. The index
// is rebuilt and reconciled from it; the request path never calls it. Names that are not what the layout writes are skipped, never
// trusted: a digest comes from a directory listing only when it parses as one.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseDigest } from '../oci/digest.ts';
import { isName, isTag } from '../oci/reference.ts';
import type { TagRow } from './index-db.ts';
import type { CacheLayout } from './layout.ts';

export interface ScannedBlob {
  readonly digest: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface ScannedTag {
  readonly host: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

/**
 * What the index is rebuilt and reconciled from: the content as its store holds it. The layout's
 * files by default (layoutScan); another backend (storage/: a bucket) lists its objects.
 */
export interface ContentScan {
  /** Every stored blob, in batches (a prefix directory, a listing page). */
  blobs(): AsyncIterable<ScannedBlob[]>;
  /** Digests that have a manifest record. */
  manifestMetas(): Promise<Set<string>>;
  tags(): Promise<ScannedTag[]>;
  /** A blob's bytes (a manifest's, for its references); undefined when it cannot be read. */
  read(digest: string): Promise<Buffer | undefined>;
  /** A second look before a row is dropped: stored after the scan passed it, or really gone. */
  hasBlob(digest: string): Promise<boolean>;
  hasTag(tag: TagRow): Promise<boolean>;
}

/** The ContentScan of the cache directory's own files. */
export function layoutScan(layout: CacheLayout): ContentScan {
  return {
    blobs: () => scanBlobs(layout),
    manifestMetas: () => scanManifestMetas(layout),
    tags: () => scanTags(layout),
    read: async (digest) => {
      const parsed = parseDigest(digest);
      return parsed ? readFile(layout.blobPath(parsed)).catch(() => undefined) : undefined;
    },
    hasBlob: async (digest) => {
      const parsed = parseDigest(digest);
      return parsed !== undefined && (await exists(layout.blobPath(parsed)));
    },
    hasTag: async (tag) => {
      let file: string;
      try {
        file = layout.tagPath(tag.host, tag.repo, tag.tag);
      } catch {
        return false;
      }
      return exists(file);
    },
  };
}

/** Files stat'ed at once: enough to keep the disk busy, few enough not to hog descriptors. */
const PARALLEL = 64;

/** Blob files, one prefix directory (a few hundred files) at a time. */
export async function* scanBlobs(layout: CacheLayout): AsyncIterable<ScannedBlob[]> {
  for (const algorithm of await list(layout.blobsDir)) {
    for (const prefix of await list(path.join(layout.blobsDir, algorithm))) {
      const dir = path.join(layout.blobsDir, algorithm, prefix);
      const digests = (await list(dir)).map((hex) => `${algorithm}:${hex}`).filter(isCacheDigest);
      const found = await mapLimited(digests, async (digest) => {
        const info = await stat(path.join(dir, digest.slice(algorithm.length + 1))).catch(() => undefined);
        return info?.isFile() ? { digest, size: info.size, mtimeMs: Math.round(info.mtimeMs) } : undefined;
      });
      yield found.filter((blob) => blob !== undefined);
    }
  }
}

/** Digests that have a manifest meta file (manifests/<alg>/<2 hex>/<hex>.json). */
export async function scanManifestMetas(layout: CacheLayout): Promise<Set<string>> {
  const found = new Set<string>();
  for (const algorithm of await list(layout.manifestsDir)) {
    for (const prefix of await list(path.join(layout.manifestsDir, algorithm))) {
      for (const name of await list(path.join(layout.manifestsDir, algorithm, prefix))) {
        const digest = `${algorithm}:${name.replace(/\.json$/, '')}`;
        if (name.endsWith('.json') && isCacheDigest(digest)) found.add(digest);
      }
    }
  }
  return found;
}

/** Tag records: tags/<host:port>/<repository>/_tags/<tag>.json, with the digest each names. */
export async function scanTags(layout: CacheLayout): Promise<ScannedTag[]> {
  const found: ScannedTag[] = [];
  for (const host of await list(layout.tagsDir)) {
    const walk = async (dir: string, repository: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (!entry.isDirectory()) continue;
        const child = path.join(dir, entry.name);
        if (entry.name === '_tags') {
          if (isName(repository)) found.push(...(await readTags(child, host, repository)));
        } else {
          await walk(child, repository === '' ? entry.name : `${repository}/${entry.name}`);
        }
      }
    };
    await walk(path.join(layout.tagsDir, host), '');
  }
  return found;
}

async function readTags(dir: string, host: string, repository: string): Promise<ScannedTag[]> {
  const names = (await list(dir)).filter((name) => name.endsWith('.json') && isTag(name.slice(0, -5)));
  const tags = await mapLimited(names, async (name) => {
    const digest = await readTagDigest(path.join(dir, name));
    return digest === undefined ? undefined : { host, repository, tag: name.slice(0, -5), digest };
  });
  return tags.filter((tag) => tag !== undefined);
}

/** The digest a tag record names; undefined when it is missing or unreadable. */
export async function readTagDigest(file: string): Promise<string | undefined> {
  try {
    const record = JSON.parse(await readFile(file, 'utf8')) as { digest?: unknown } | null;
    const digest = record?.digest;
    return typeof digest === 'string' && isCacheDigest(digest) ? digest : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a path exists (a file the index names may have been removed by a crashed eviction). */
export async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function isCacheDigest(digest: string): boolean {
  return parseDigest(digest) !== undefined;
}

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

export async function mapLimited<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return out;
}

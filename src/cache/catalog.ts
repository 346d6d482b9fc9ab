// What the cache holds, as an operator asks: totals, and registries → repositories → tags with
// each image's digest, media type, size (manifest, config and layers, each counted once),
// platforms of an index and last use. Read from an index snapshot, the tag records and the
// indexes' bytes (through the stores: files, or a bucket), never written; purge.ts selects
// with the same Selector.
import { parseDigest } from '../oci/digest.ts';
import { indexPlatforms } from '../oci/manifest.ts';
import { DiskBlobStore, type BlobStore } from './blobs.ts';
import type { EntryRow, Snapshot, TagRow } from './index.ts';
import { mapLimited } from './index-scan.ts';
import type { CacheLayout } from './layout.ts';
import { DiskRecords, type RecordStore } from './records.ts';

/** Which images: a registry, a repository in it, a tag of that; nothing set: all of them. */
export interface Selector {
  /** `host:port` as the cache names registries; a bare host means port 443. */
  readonly registry?: string | undefined;
  readonly repository?: string | undefined;
  readonly tag?: string | undefined;
}

export interface TagListing {
  readonly tag: string;
  readonly digest: string;
  /** From the tag record; null when it cannot be read. */
  readonly mediaType: string | null;
  /** Bytes of the manifest and everything under it that is cached, each digest once. */
  readonly size: number;
  /** An index's platforms (`linux/amd64`), absent for a single-platform manifest. */
  readonly platforms?: readonly string[];
  /** Latest use of the manifest or a manifest under it (ms since the epoch). */
  readonly lastUsed: number;
}

export interface RepositoryListing {
  readonly repository: string;
  readonly tags: readonly TagListing[];
}

export interface RegistryListing {
  readonly registry: string;
  readonly repositories: readonly RepositoryListing[];
}

export interface Totals {
  readonly bytes: number;
  readonly files: number;
  readonly manifests: number;
  readonly tags: number;
  /** Roots, as eviction counts images: present manifests (or blobs) nothing else references. */
  readonly images: number;
  /** Bytes per registry (`host:port`) that first stored them; content of unknown origin is left out. */
  readonly registries: Readonly<Record<string, number>>;
}

/**
 * Where the listing reads tag records (media types) and indexes (platforms): the stores the
 * proxy writes them to, which are not the cache directory's files with storage.type s3.
 */
export interface CatalogStores {
  readonly records: RecordStore;
  readonly blobs: Pick<BlobStore, 'readAll'>;
}

/** Indexes are read for their platforms only up to this size (they are small; this is a guard). */
const MAX_INDEX_READ = 4 * 1024 * 1024;

export function registryMatches(host: string, registry: string): boolean {
  const wanted = registry.toLowerCase();
  return host === wanted || host === `${wanted}:443`;
}

export function selects(selector: Selector, tag: TagRow): boolean {
  if (selector.registry !== undefined && !registryMatches(tag.host, selector.registry)) return false;
  if (selector.repository !== undefined && tag.repo !== selector.repository) return false;
  return selector.tag === undefined || tag.tag === selector.tag;
}

export function totals(snapshot: Snapshot): Totals {
  let bytes = 0;
  let manifests = 0;
  const registries: Record<string, number> = {};
  for (const entry of snapshot.entries.values()) {
    bytes += entry.size;
    if (entry.kind === 'manifest') manifests += 1;
    if (entry.host !== null) registries[entry.host] = (registries[entry.host] ?? 0) + entry.size;
  }
  const referenced = new Set<string>();
  for (const [parent, children] of snapshot.children) {
    if (snapshot.entries.get(parent)?.kind !== 'manifest') continue;
    for (const child of children) referenced.add(child);
  }
  let images = 0;
  for (const digest of snapshot.entries.keys()) if (!referenced.has(digest)) images += 1;
  const files = snapshot.entries.size;
  return { bytes, files, manifests, tags: snapshot.tags.length, images, registries };
}

/** Every digest under `root` that is cached (root included), each once. */
export function imageEntries(snapshot: Snapshot, root: string): EntryRow[] {
  const out: EntryRow[] = [];
  const seen = new Set<string>();
  const stack = [root];
  for (let digest = stack.pop(); digest !== undefined; digest = stack.pop()) {
    const entry = snapshot.entries.get(digest);
    if (seen.has(digest) || !entry) continue;
    seen.add(digest);
    out.push(entry);
    if (entry.kind === 'manifest') stack.push(...(snapshot.children.get(digest) ?? []));
  }
  return out;
}

/** The tagged images `selector` names, grouped and sorted by registry, repository and tag. */
export async function listImages(
  snapshot: Snapshot,
  layout: CacheLayout,
  selector: Selector = {},
  stores: CatalogStores = diskStores(layout),
): Promise<RegistryListing[]> {
  const registries = new Map<string, Map<string, TagListing[]>>();
  const tags = snapshot.tags
    .filter((tag) => selects(selector, tag) && snapshot.entries.has(tag.digest))
    .sort((a, b) => compare(a.host, b.host) || compare(a.repo, b.repo) || compare(a.tag, b.tag));
  // A few at a time: in a bucket, each tag's record (and an index's bytes) is a round trip.
  const described = await mapLimited(tags, (tag) => describe(snapshot, stores, tag));
  tags.forEach((tag, i) => {
    const repositories = registries.get(tag.host) ?? new Map<string, TagListing[]>();
    registries.set(tag.host, repositories);
    const list = repositories.get(tag.repo) ?? [];
    repositories.set(tag.repo, list);
    list.push(described[i] as TagListing);
  });
  return [...registries].map(([registry, repositories]) => ({
    registry,
    repositories: [...repositories].map(([repository, list]) => ({ repository, tags: list })),
  }));
}

/** The files of the cache directory (storage.type fs). */
function diskStores(layout: CacheLayout): CatalogStores {
  return { records: new DiskRecords(layout), blobs: new DiskBlobStore(layout.root) };
}

async function describe(snapshot: Snapshot, stores: CatalogStores, tag: TagRow): Promise<TagListing> {
  const entries = imageEntries(snapshot, tag.digest);
  const size = entries.reduce((sum, entry) => sum + entry.size, 0);
  const lastUsed = entries.reduce(
    (latest, e) => (e.kind === 'manifest' ? Math.max(latest, e.lastUsed) : latest),
    0,
  );
  const mediaType = await readMediaType(stores.records, tag);
  const platforms = await readPlatforms(stores.blobs, snapshot.entries.get(tag.digest), mediaType);
  return {
    tag: tag.tag,
    digest: tag.digest,
    mediaType,
    size,
    ...(platforms ? { platforms } : {}),
    lastUsed,
  };
}

async function readMediaType(records: RecordStore, tag: TagRow): Promise<string | null> {
  try {
    const key = { kind: 'tag', host: tag.host, name: tag.repo, tag: tag.tag } as const;
    const record = await records.read<{ mediaType?: unknown } | null>(key);
    const mediaType = record?.mediaType;
    return typeof mediaType === 'string' ? mediaType : null;
  } catch {
    return null;
  }
}

async function readPlatforms(
  blobs: CatalogStores['blobs'],
  entry: EntryRow | undefined,
  mediaType: string | null,
): Promise<string[] | undefined> {
  const isIndex = mediaType !== null && /index|manifest\.list/.test(mediaType);
  if (!isIndex || !entry || !parseDigest(entry.digest) || entry.size > MAX_INDEX_READ) return undefined;
  try {
    const platforms = indexPlatforms(await blobs.readAll(entry.digest));
    return platforms.map((p) => p.platform).filter((p) => p !== 'unknown/unknown');
  } catch {
    return undefined;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

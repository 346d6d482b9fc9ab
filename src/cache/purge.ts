// Purging images on an operator's request: the selected tags go (records, then rows), and with
// them the images only they named, through the eviction machinery (EvictionPlan.removal,
// removeVictims, CacheIndex.remove), so a purge removes files in the same crash-safe order as
// eviction and keeps every blob another remaining image still references. Pins do not protect
// from a purge: it is an explicit request. Content being read is left and reported. Referrers
// records go with their subject manifest (removeVictims); a purge without a tag (a repository, a
// registry, everything) also removes every referrers record of the repositories it selects.
import { Pins } from '../config/pins.ts';
import { registryMatches, selects, type Selector } from './catalog.ts';
import { removeReferrersDir, removeTagFile, removeVictims, type RemoveOptions } from './eviction-files.ts';
import { EvictionPlan } from './eviction-plan.ts';
import type { CacheIndex, EntryRow, Snapshot, TagRow } from './index.ts';

export interface PurgeOptions extends RemoveOptions {
  readonly index: CacheIndex;
  /** Content being served or filled right now: its image is left in place. */
  readonly inUse?: ((digest: string) => boolean) | undefined;
  readonly now?: (() => number) | undefined;
  /** Removes a tag's record; default: its file in the index's layout (removeTagFile). */
  readonly removeTag?: ((tag: TagRow) => Promise<void>) | undefined;
  /** Removes a repository's referrers records; default: its directory in the layout. */
  readonly removeReferrers?: ((host: string, repository: string) => Promise<void>) | undefined;
}

export interface PurgeResult {
  /** Tag records removed. */
  readonly tags: number;
  /** Images (roots) removed. */
  readonly images: number;
  /** Files (digests) removed: manifests, configs and layers. */
  readonly files: number;
  readonly bytes: number;
  /** Roots left because a client reads them now. */
  readonly inUse: readonly string[];
}

const NO_PINS = new Pins([]);

export async function purge(selector: Selector, options: PurgeOptions): Promise<PurgeResult> {
  const { index } = options;
  const started = (options.now ?? Date.now)();
  const snapshot = await index.snapshot();
  const plan = await EvictionPlan.build(snapshot, NO_PINS);
  const selected = snapshot.tags.filter((tag) => selects(selector, tag));
  const chosen = new Set(selected);
  const stillTagged = new Set(snapshot.tags.filter((tag) => !chosen.has(tag)).map((tag) => tag.digest));
  const roots = new Set(plan.images.map((image) => image.root));
  const candidates = new Set<string>();
  for (const tag of selected) if (roots.has(tag.digest)) candidates.add(tag.digest);
  // Without a tag, the selection also holds what was pulled by digest (and, for --all, stray blobs).
  if (selector.tag === undefined) {
    for (const entry of snapshot.entries.values()) {
      if (roots.has(entry.digest) && sourceSelected(selector, entry)) candidates.add(entry.digest);
    }
  }
  // Tags first: a tag never names a manifest being removed.
  const removeTag = options.removeTag ?? ((tag: TagRow) => removeTagFile(index.layout, tag));
  for (const tag of selected) await removeTag(tag);
  const tags = index.removeTags(selected);
  const tagsOf = groupByDigest(selected);
  let images = 0;
  let files = 0;
  let bytes = 0;
  const inUse: string[] = [];
  for (const root of candidates) {
    if (stillTagged.has(root)) continue;
    const victims = plan.removal(root);
    if (options.inUse && victims.some((entry) => options.inUse?.(entry.digest))) {
      inUse.push(root);
      continue;
    }
    const removed = await removeVictims(victims, (digest) => tagsOf.get(digest) ?? [], options);
    index.remove(removed, started);
    plan.removed(removed);
    const gone = new Set(removed);
    if (gone.has(root)) images += 1;
    files += removed.length;
    bytes += victims.reduce((sum, entry) => sum + (gone.has(entry.digest) ? entry.size : 0), 0);
  }
  if (selector.tag === undefined) await removeRepositoryReferrers(selector, snapshot, selected, options);
  return { tags, images, files, bytes, inUse };
}

/**
 * The referrers records of every repository the selection names (by its tags, or by content
 * stored from it: a referrers index is stored with the repository it was asked in). Records of
 * subjects left in use go too: they are a cache, and the next request asks upstream again.
 */
async function removeRepositoryReferrers(
  selector: Selector,
  snapshot: Snapshot,
  selected: readonly TagRow[],
  options: PurgeOptions,
): Promise<void> {
  const repositories = new Map<string, { host: string; repo: string }>();
  const add = (host: string | null, repo: string | null) => {
    if (host !== null && repo !== null) repositories.set(`${host}/${repo}`, { host, repo });
  };
  for (const tag of selected) add(tag.host, tag.repo);
  for (const entry of snapshot.entries.values())
    if (sourceSelected(selector, entry)) add(entry.host, entry.repo);
  const layout = options.index.layout;
  const remove = options.removeReferrers ?? ((host, repo) => removeReferrersDir(layout, host, repo));
  for (const { host, repo } of repositories.values()) await remove(host, repo);
}

/** Whether an untagged root's origin is in the selection (everything when nothing is selected). */
function sourceSelected(selector: Selector, entry: EntryRow): boolean {
  if (selector.registry === undefined) return selector.repository === undefined;
  if (entry.host === null || !registryMatches(entry.host, selector.registry)) return false;
  return selector.repository === undefined || entry.repo === selector.repository;
}

function groupByDigest(tags: readonly TagRow[]): Map<string, TagRow[]> {
  const out = new Map<string, TagRow[]>();
  for (const tag of tags) out.set(tag.digest, [...(out.get(tag.digest) ?? []), tag]);
  return out;
}

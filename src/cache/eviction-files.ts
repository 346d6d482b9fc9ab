// Deleting an evicted entry's files, in the order that keeps a crash harmless: the tag records
// naming it first (a tag never points at a manifest being removed), then the referrers records
// of a manifest as a subject (its signature list goes with it), then the manifest meta file
// (the manifest stops being served), then the bytes. An open reader keeps its descriptor working
// after the unlink (POSIX), so a client mid-download still gets the whole blob. Eviction and
// purge (purge.ts) both remove through removeVictims, so they keep the same order.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseDigest, type ParsedDigest } from '../oci/digest.ts';
import type { BlobStore } from './blobs.ts';
import type { Victim } from './eviction.ts';
import type { EntryRow, TagRow } from './index.ts';
import { readTagDigest } from './index-scan.ts';
import { referrersPrefix, type CacheLayout } from './layout.ts';
import type { RecordKey, RecordStore } from './records.ts';

/** The Evictor's `remove` for the disk layout. Missing files are fine: a crash may have taken them. */
export function removeFiles(layout: CacheLayout): (victim: Victim) => Promise<void> {
  return async (victim) => {
    const digest = parseDigest(victim.digest);
    if (!digest) return;
    for (const tag of victim.tags) await removeTagFile(layout, tag);
    if (victim.kind === 'manifest') {
      for (const { host, repo } of repositoriesOf(victim))
        await removeReferrersFiles(layout, host, repo, digest);
      await rm(layout.manifestMetaPath(digest), { force: true });
    }
    await rm(layout.blobPath(digest), { force: true });
  };
}

/**
 * Where the referrers records of a manifest victim are looked for: the repository that stored
 * it and those of the tags naming it. The rule is "a record goes with its subject": a record is
 * a few hundred bytes that the cap does not count (like a tag record), while the index it names
 * is a manifest entry, counted and evicted as its own image. Records of the same subject asked
 * in yet another repository stay until that repository is purged; one whose index is gone is
 * only ever a miss (referrers.ts asks upstream), never served.
 */
export function repositoriesOf(victim: Victim): Array<{ host: string; repo: string }> {
  const out = new Map<string, { host: string; repo: string }>();
  if (victim.host && victim.repo)
    out.set(`${victim.host}/${victim.repo}`, { host: victim.host, repo: victim.repo });
  for (const { host, repo } of victim.tags) out.set(`${host}/${repo}`, { host, repo });
  return [...out.values()];
}

/** Removes the referrers records of `subject` in a repository, under every artifactType filter. */
export async function removeReferrersFiles(
  layout: CacheLayout,
  host: string,
  repo: string,
  subject: ParsedDigest,
): Promise<void> {
  let dir: string;
  try {
    dir = layout.referrersDir(host, repo);
  } catch {
    return;
  }
  const prefix = `${referrersPrefix(subject)}.`;
  const names = (await readdir(dir).catch(() => [])).filter((name) => name.startsWith(prefix));
  await Promise.all(names.map((name) => rm(path.join(dir, name), { force: true })));
}

/** A repository's referrers records, all of them (a purge of the repository). */
export async function removeReferrersDir(layout: CacheLayout, host: string, repo: string): Promise<void> {
  let dir: string;
  try {
    dir = layout.referrersDir(host, repo);
  } catch {
    return;
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * The Evictor's `remove` for another backend (storage/: a bucket), in the same order: tag
 * records still naming the victim, its manifest record, then its bytes through the BlobStore.
 */
export function removeRecords(records: RecordStore, blobs: BlobStore): (victim: Victim) => Promise<void> {
  return async (victim) => {
    const digest = parseDigest(victim.digest);
    if (!digest) return;
    for (const tag of victim.tags) await removeTagRecord(records, tag);
    if (victim.kind === 'manifest') {
      // A RecordStore cannot list: the unfiltered record goes; filtered ones stay (small, and
      // served only as a miss once their index is gone).
      for (const { host, repo } of repositoriesOf(victim)) {
        await removeKeyed(records, {
          kind: 'referrers',
          host,
          name: repo,
          subject: digest,
          artifactType: '',
        });
      }
      await records.remove({ kind: 'manifest', digest });
    }
    await blobs.delete(victim.digest);
  };
}

/** Removes a record; a key that the store refuses to build (an invalid name) names nothing. */
async function removeKeyed(records: RecordStore, key: RecordKey): Promise<void> {
  try {
    await records.remove(key);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
}

/** removeTagFile for a RecordStore: unless a pull has moved the tag since the index read it. */
export async function removeTagRecord(
  records: RecordStore,
  { host, repo, tag, digest }: TagRow,
): Promise<void> {
  const key = { kind: 'tag', host, name: repo, tag } as const;
  if ((await records.read<{ digest?: unknown }>(key).catch(() => undefined))?.digest === digest) {
    await records.remove(key);
  }
}

/** Removes a tag record unless a pull has moved the tag to another digest since it was read. */
export async function removeTagFile(layout: CacheLayout, tag: TagRow): Promise<void> {
  let file: string;
  try {
    file = layout.tagPath(tag.host, tag.repo, tag.tag);
  } catch {
    return;
  }
  if ((await readTagDigest(file)) === tag.digest) await rm(file, { force: true });
}

export interface RemoveOptions {
  /** Deletes one victim's files (removeFiles, plus any in-memory copy). */
  readonly remove: (victim: Victim) => Promise<void>;
  readonly onError?: ((error: unknown) => void) | undefined;
}

/**
 * Removes the files of `victims` (an EvictionPlan removal, parents first): manifests one by
 * one, so that a crash never leaves a manifest whose layers are gone; then configs and layers
 * together. Stops at the first manifest that cannot be removed; resolves with the digests
 * removed, in order.
 */
export async function removeVictims(
  victims: readonly EntryRow[],
  tagsOf: (digest: string) => readonly TagRow[],
  options: RemoveOptions,
): Promise<string[]> {
  const done = new Set<string>();
  const remove = async (entry: EntryRow) => {
    const tags = entry.kind === 'manifest' ? tagsOf(entry.digest) : [];
    const { digest, kind, size, host, repo } = entry;
    await options.remove({ digest, kind, size, tags, host, repo });
    done.add(entry.digest);
  };
  try {
    for (const entry of victims) if (entry.kind === 'manifest') await remove(entry);
    const outcomes = await Promise.allSettled(victims.filter((e) => e.kind !== 'manifest').map(remove));
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') options.onError?.(outcome.reason);
    }
  } catch (error) {
    options.onError?.(error);
  }
  return victims.filter((entry) => done.has(entry.digest)).map((entry) => entry.digest);
}

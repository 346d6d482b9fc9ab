// Deleting an evicted entry's files, in the order that keeps a crash harmless: the tag records
// naming it first (a tag never points at a manifest being removed), then the manifest meta file
// (the manifest stops being served), then the bytes. An open reader keeps its descriptor working
// after the unlink (POSIX), so a client mid-download still gets the whole blob. Eviction and
// purge (purge.ts) both remove through removeVictims, so they keep the same order.
import { rm } from 'node:fs/promises';
import { parseDigest } from '../oci/digest.ts';
import type { BlobStore } from './blobs.ts';
import type { Victim } from './eviction.ts';
import type { EntryRow, TagRow } from './index.ts';
import { readTagDigest } from './index-scan.ts';
import type { CacheLayout } from './layout.ts';
import type { RecordStore } from './records.ts';

/** The Evictor's `remove` for the disk layout. Missing files are fine: a crash may have taken them. */
export function removeFiles(layout: CacheLayout): (victim: Victim) => Promise<void> {
  return async (victim) => {
    const digest = parseDigest(victim.digest);
    if (!digest) return;
    for (const tag of victim.tags) await removeTagFile(layout, tag);
    if (victim.kind === 'manifest') await rm(layout.manifestMetaPath(digest), { force: true });
    await rm(layout.blobPath(digest), { force: true });
  };
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
    if (victim.kind === 'manifest') await records.remove({ kind: 'manifest', digest });
    await blobs.delete(victim.digest);
  };
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
    await options.remove({ digest: entry.digest, kind: entry.kind, size: entry.size, tags });
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

// Deleting an evicted entry's files, in the order that keeps a crash harmless: the tag records
// naming it first (a tag never points at a manifest being removed), then the manifest meta file
// (the manifest stops being served), then the bytes. An open reader keeps its descriptor working
// after the unlink (POSIX), so a client mid-download still gets the whole blob.
import { rm } from 'node:fs/promises';
import { parseDigest } from '../oci/digest.ts';
import type { Victim } from './eviction.ts';
import { readTagDigest } from './index-scan.ts';
import type { CacheLayout } from './layout.ts';

/** The Evictor's `remove` for the disk layout. Missing files are fine: a crash may have taken them. */
export function removeFiles(layout: CacheLayout): (victim: Victim) => Promise<void> {
  return async (victim) => {
    const digest = parseDigest(victim.digest);
    if (!digest) return;
    for (const tag of victim.tags) {
      let file: string;
      try {
        file = layout.tagPath(tag.host, tag.repo, tag.tag);
      } catch {
        continue;
      }
      // A pull may have moved the tag to another digest since the pass began: keep that record.
      if ((await readTagDigest(file)) === victim.digest) await rm(file, { force: true });
    }
    if (victim.kind === 'manifest') await rm(layout.manifestMetaPath(digest), { force: true });
    await rm(layout.blobPath(digest), { force: true });
  };
}

// Brings the index in line with the stored content, which is the truth (a ContentScan: the
// layout's files, or a bucket's objects): a rebuild fills an empty index from it; a reconcile,
// run in the background after start, drops rows whose file is gone (a crash between an
// eviction's unlinks and its row deletes) and adds files the index lacks (a crash before a batch
// of writes was flushed). Both tolerate the request path writing meanwhile:
// a file is declared gone only after a second look.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { manifestReferences } from '../oci/manifest.ts';
import type { EntryKind, EntryRow, IndexDb, TagRow } from './index-db.ts';
import type { ContentScan, ScannedBlob } from './index-scan.ts';

export interface SyncStats {
  /** Files added to the index (all of them, for a rebuild). */
  readonly added: number;
  /** Rows dropped because their file is gone. */
  readonly dropped: number;
  /** Rows whose kind changed: a manifest meta file appeared or vanished. */
  readonly rekinded: number;
  readonly tagsAdded: number;
  readonly tagsDropped: number;
}

/** Fills an empty index from the files. Blob mtimes stand in for the last use. */
export async function rebuild(db: IndexDb, scan: ContentScan): Promise<SyncStats> {
  const metas = await scan.manifestMetas();
  let added = 0;
  for await (const batch of scan.blobs()) {
    const references = await readReferences(scan, batch, metas);
    db.transaction(() => {
      for (const blob of batch) insert(db, blob, metas.has(blob.digest) ? 'manifest' : 'blob', references);
    });
    added += batch.length;
  }
  const tags = await scan.tags();
  db.transaction(() => {
    for (const tag of tags) db.upsertTag({ ...tag, repo: tag.repository });
  });
  await inferSources(db);
  return { added, dropped: 0, rekinded: 0, tagsAdded: tags.length, tagsDropped: 0 };
}

/** Makes the index agree with the files, leaving rows that agree alone. */
export async function reconcile(db: IndexDb, scan: ContentScan): Promise<SyncStats> {
  const metas = await scan.manifestMetas();
  const seen = new Set<string>();
  let added = 0;
  let rekinded = 0;
  for await (const batch of scan.blobs()) {
    for (const blob of batch) seen.add(blob.digest);
    const kindOf = (blob: ScannedBlob): EntryKind => (metas.has(blob.digest) ? 'manifest' : 'blob');
    const stale = batch.filter((blob) => db.get(blob.digest)?.kind !== kindOf(blob));
    if (stale.length === 0) continue;
    const references = await readReferences(scan, stale, metas);
    db.transaction(() => {
      for (const blob of stale) {
        const row = db.get(blob.digest);
        if (row === undefined) {
          insert(db, blob, kindOf(blob), references);
          added += 1;
        } else if (row.kind !== kindOf(blob)) {
          if (kindOf(blob) === 'blob') db.demote(blob.digest);
          else insert(db, blob, 'manifest', references);
          rekinded += 1;
        }
      }
    });
  }
  const dropped = await dropMissing(db, scan, seen);
  const tags = await reconcileTags(db, scan);
  if (added + rekinded + tags.tagsAdded > 0) await inferSources(db);
  return { added, dropped, rekinded, ...tags };
}

async function dropMissing(db: IndexDb, scan: ContentScan, seen: ReadonlySet<string>): Promise<number> {
  const unseen: EntryRow[] = [];
  await db.snapshotRows({ entry: (row) => (seen.has(row.digest) ? undefined : unseen.push(row)) });
  const gone: string[] = [];
  for (const row of unseen) {
    // Stored after the scan passed its directory, or really gone: a second look tells.
    if (!(await scan.hasBlob(row.digest))) gone.push(row.digest);
  }
  db.transaction(() => {
    // Tag rows follow their own files (reconcileTags), not the manifest they name.
    for (const digest of gone) db.delete(digest, Number.MAX_SAFE_INTEGER, false);
  });
  return gone.length;
}

async function reconcileTags(
  db: IndexDb,
  scan: ContentScan,
): Promise<{ tagsAdded: number; tagsDropped: number }> {
  const key = (tag: Omit<TagRow, 'digest'>) => `${tag.host}\0${tag.repo}\0${tag.tag}`;
  const files = new Map((await scan.tags()).map((tag) => [key({ ...tag, repo: tag.repository }), tag]));
  const rows = new Map(db.tags().map((row) => [key(row), row]));
  const gone: TagRow[] = [];
  for (const [id, row] of rows) {
    if (files.has(id)) continue;
    if (!(await scan.hasTag(row))) gone.push(row);
  }
  const changed = [...files].filter(([id, tag]) => rows.get(id)?.digest !== tag.digest);
  db.transaction(() => {
    for (const row of gone) db.deleteTag(row);
    for (const [, tag] of changed) db.upsertTag({ ...tag, repo: tag.repository });
  });
  return { tagsAdded: changed.length, tagsDropped: gone.length };
}

function insert(
  db: IndexDb,
  blob: ScannedBlob,
  kind: EntryKind,
  references: ReadonlyMap<string, string[]>,
): void {
  db.upsert({ ...blob, kind, host: null, repo: null, lastUsed: blob.mtimeMs, added: blob.mtimeMs });
  if (kind === 'manifest') db.setRefs(blob.digest, references.get(blob.digest) ?? []);
}

/** The references of the manifests among `blobs`, read from their bytes. */
async function readReferences(
  scan: ContentScan,
  blobs: readonly ScannedBlob[],
  metas: ReadonlySet<string>,
): Promise<Map<string, string[]>> {
  const references = new Map<string, string[]>();
  for (const blob of blobs) {
    if (!metas.has(blob.digest)) continue;
    const content = await scan.read(blob.digest);
    if (content) references.set(blob.digest, manifestReferences(content));
  }
  return references;
}

/** Infers where content came from (IndexDb.inferSources), a page of tags per turn of the event loop. */
async function inferSources(db: IndexDb): Promise<void> {
  for (let after = db.transaction(() => db.inferSources(['', '', ''])); after;) {
    await nextTurn();
    const from = after;
    after = db.transaction(() => db.inferSources(from));
  }
}

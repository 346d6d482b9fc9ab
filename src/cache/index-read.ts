// Reading a cache index from outside the server that owns it (`pullthrough cache ls --cache-dir`
// on a stopped server): opened read-only, never rebuilt, repaired or marked, so that nothing a
// server would later trust is changed. Writes (purge) go through the server's admin API only.
import { DatabaseSync } from 'node:sqlite';
import { SCHEMA_VERSION, type EntryRow, type TagRow } from './index-db.ts';
import type { Snapshot } from './index.ts';
import { CacheLayout } from './layout.ts';

export class IndexUnreadableError extends Error {
  override readonly name = 'IndexUnreadableError';
}

/** Everything the index at `<root>/index.db` holds, as one snapshot. */
export function readIndex(root: string): { snapshot: Snapshot; layout: CacheLayout } {
  const layout = new CacheLayout(root);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(layout.indexFile, { readOnly: true, timeout: 1000 });
  } catch (error) {
    throw new IndexUnreadableError(`cannot open ${layout.indexFile}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const version = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as
      { value?: string } | undefined;
    if (version?.value !== SCHEMA_VERSION) {
      throw new IndexUnreadableError(
        `${layout.indexFile} is not an index this version reads (start the server once)`,
      );
    }
    db.exec('BEGIN');
    const entries = new Map<string, EntryRow>();
    const rows = db
      .prepare('SELECT digest, size, kind, host, repo, last_used AS lastUsed, added FROM blobs')
      .all() as unknown as EntryRow[];
    for (const row of rows) entries.set(row.digest, row);
    const children = new Map<string, string[]>();
    for (const ref of db.prepare('SELECT parent, child FROM refs').all() as unknown as Array<{
      parent: string;
      child: string;
    }>) {
      children.set(ref.parent, [...(children.get(ref.parent) ?? []), ref.child]);
    }
    const tags = db.prepare('SELECT host, repo, tag, digest FROM tags').all() as unknown as TagRow[];
    db.exec('COMMIT');
    return { snapshot: { entries, children, tags }, layout };
  } catch (error) {
    if (error instanceof IndexUnreadableError) throw error;
    throw new IndexUnreadableError(`cannot read ${layout.indexFile}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    db.close();
  }
}

// The SQL side of the cache index: schema and prepared statements over one node:sqlite
// database, synchronous and small. What the rows mean, when they are written and how they are
// batched is index.ts; this file only knows tables.
//
//   blobs(digest, size, kind, host, repo, last_used, added)  one row per file in blobs/
//     kind: 'manifest' when a manifest meta file stands beside the bytes, else 'blob'
//     host, repo: the registry (`host:port`) and repository that first stored it; NULL when
//       unknown (a rebuild infers them from the tags that reach it)
//     last_used, added: ms since the epoch; `added` is when the current file was stored
//   refs(parent, child)        a present manifest references `child` (oci/manifest.ts)
//   tags(host, repo, tag, digest)  one row per tag record file
//   meta(key, value)           schema version; whether the last process closed the index
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { setImmediate as nextTurn } from 'node:timers/promises';

export const SCHEMA_VERSION = '1';

export type EntryKind = 'blob' | 'manifest';

export interface EntryRow {
  readonly digest: string;
  readonly size: number;
  readonly kind: EntryKind;
  readonly host: string | null;
  readonly repo: string | null;
  readonly lastUsed: number;
  readonly added: number;
}

export interface TagRow {
  readonly host: string;
  readonly repo: string;
  readonly tag: string;
  readonly digest: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY, size INTEGER NOT NULL, kind TEXT NOT NULL, host TEXT, repo TEXT,
    last_used INTEGER NOT NULL, added INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS refs (
    parent TEXT NOT NULL, child TEXT NOT NULL, PRIMARY KEY (parent, child)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS tags (
    host TEXT NOT NULL, repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (host, repo, tag)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS tags_digest ON tags (digest);
`;

const ENTRY_COLUMNS = 'digest, size, kind, host, repo, last_used AS lastUsed, added';
/** Rows read between two turns of the event loop by snapshot(): a few ms of work each. */
const PAGE = 4096;
/** Tags whose images get their origin inferred per call of inferSources(). */
const SOURCE_PAGE = 256;

export interface SnapshotSink {
  readonly entry: (row: EntryRow) => void;
  /** Absent: references are not read. */
  readonly ref?: (parent: string, child: string) => void;
}

export class IndexDb {
  readonly db: DatabaseSync;
  readonly #file: string;
  #reader: DatabaseSync | undefined;
  #reading: Promise<unknown> = Promise.resolve();
  readonly #upsert: StatementSync;
  readonly #get: StatementSync;
  readonly #delete: StatementSync;
  readonly #deleteRefs: StatementSync;
  readonly #insertRef: StatementSync;
  readonly #upsertTag: StatementSync;
  readonly #deleteTag: StatementSync;
  readonly #deleteTagsOf: StatementSync;
  readonly #touchTree: StatementSync;
  readonly #tagPage: StatementSync;
  readonly #inferSources: StatementSync;
  readonly #setKind: StatementSync;
  readonly #getMeta: StatementSync;
  readonly #setMeta: StatementSync;

  /** Opens (creating when absent) and checks the file; throws when it is not a sound database. */
  constructor(file: string) {
    this.#file = file;
    this.db = new DatabaseSync(file, { timeout: 1000 });
    try {
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
      // quick_check reads every page but skips index cross-checks: tens of ms per 100k rows.
      const check = this.db.prepare('PRAGMA quick_check').all();
      if (check.length !== 1 || check[0]?.['quick_check'] !== 'ok')
        throw new Error('index.db failed quick_check');
      this.db.exec(SCHEMA);
    } catch (error) {
      this.db.close();
      throw error;
    }
    const prepare = (sql: string) => this.db.prepare(sql);
    this.#upsert = prepare(`
      INSERT INTO blobs (digest, size, kind, host, repo, last_used, added) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (digest) DO UPDATE SET size = excluded.size,
        kind = CASE WHEN excluded.kind = 'manifest' THEN 'manifest' ELSE blobs.kind END,
        host = coalesce(blobs.host, excluded.host), repo = coalesce(blobs.repo, excluded.repo),
        last_used = max(blobs.last_used, excluded.last_used), added = excluded.added`);
    this.#get = prepare(`SELECT ${ENTRY_COLUMNS} FROM blobs WHERE digest = ?`);
    this.#delete = prepare('DELETE FROM blobs WHERE digest = ? AND added <= ?');
    this.#deleteRefs = prepare('DELETE FROM refs WHERE parent = ?');
    this.#insertRef = prepare('INSERT OR IGNORE INTO refs (parent, child) VALUES (?, ?)');
    this.#upsertTag = prepare('INSERT OR REPLACE INTO tags (host, repo, tag, digest) VALUES (?, ?, ?, ?)');
    this.#deleteTag = prepare('DELETE FROM tags WHERE host = ? AND repo = ? AND tag = ?');
    this.#deleteTagsOf = prepare('DELETE FROM tags WHERE digest = ?');
    // A pull refreshes the manifest and the manifests under it (an index's platform manifests).
    // Configs and layers are not written: they age with the images that reference them
    // (eviction-plan.ts), which saves the ~10 scattered row writes per pull that dominate.
    this.#touchTree = prepare(`
      WITH RECURSIVE tree (digest) AS (
        SELECT ? UNION
        SELECT refs.child FROM refs JOIN tree ON refs.parent = tree.digest
          JOIN blobs ON blobs.digest = refs.child AND blobs.kind = 'manifest'
      )
      UPDATE blobs SET last_used = ?2 WHERE digest IN (SELECT digest FROM tree) AND last_used < ?2`);
    this.#tagPage = prepare(
      `SELECT host, repo, tag FROM tags WHERE (host, repo, tag) > (?, ?, ?) ORDER BY 1, 2, 3 LIMIT ${SOURCE_PAGE}`,
    );
    this.#inferSources = prepare(`
      WITH RECURSIVE tree (digest, host, repo) AS (
        SELECT digest, host, repo FROM tags WHERE (host, repo, tag) > (?, ?, ?) AND (host, repo, tag) <= (?, ?, ?)
        UNION SELECT refs.child, tree.host, tree.repo FROM refs JOIN tree ON refs.parent = tree.digest
      )
      UPDATE blobs SET host = source.host, repo = source.repo
      FROM (SELECT digest, host, repo FROM tree GROUP BY digest) AS source
      WHERE blobs.digest = source.digest AND blobs.host IS NULL`);
    this.#setKind = prepare('UPDATE blobs SET kind = ? WHERE digest = ?');
    this.#getMeta = prepare('SELECT value FROM meta WHERE key = ?');
    this.#setMeta = prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  }

  /** Runs `fn` in one transaction: one fsync for a whole batch. */
  transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  get(digest: string): EntryRow | undefined {
    return this.#get.get(digest) as EntryRow | undefined;
  }

  upsert(row: EntryRow): void {
    this.#upsert.run(row.digest, row.size, row.kind, row.host, row.repo, row.lastUsed, row.added);
  }

  /** Replaces what `parent` references. */
  setRefs(parent: string, children: readonly string[]): void {
    this.#deleteRefs.run(parent);
    for (const child of children) this.#insertRef.run(parent, child);
  }

  /**
   * Deletes the row (unless stored again after `notAddedAfter`) and its references; with
   * `tags`, also the tag rows naming it (an eviction removed their files).
   */
  delete(digest: string, notAddedAfter: number, tags: boolean): boolean {
    if (Number(this.#delete.run(digest, notAddedAfter).changes) === 0) return false;
    this.#deleteRefs.run(digest);
    if (tags) this.#deleteTagsOf.run(digest);
    return true;
  }

  /** A manifest whose meta file is gone is only bytes: it no longer holds its children. */
  demote(digest: string): void {
    this.#setKind.run('blob', digest);
    this.#deleteRefs.run(digest);
  }

  upsertTag(tag: TagRow): void {
    this.#upsertTag.run(tag.host, tag.repo, tag.tag, tag.digest);
  }

  deleteTag(tag: Omit<TagRow, 'digest'>): void {
    this.#deleteTag.run(tag.host, tag.repo, tag.tag);
  }

  touchTree(digest: string, at: number): void {
    this.#touchTree.run(digest, at);
  }

  /**
   * Gives rows without a known registry the host and repository of a tag that reaches them
   * through manifests: what a rebuild can tell about where content came from. One page of tags
   * (after the tag key `after`) per call; returns the key to continue from, or undefined.
   */
  inferSources(after: readonly [string, string, string]): [string, string, string] | undefined {
    const page = this.#tagPage.all(...after) as unknown as TagRow[];
    const last = page.at(-1);
    if (last === undefined) return undefined;
    this.#inferSources.run(...after, last.host, last.repo, last.tag);
    return page.length < SOURCE_PAGE ? undefined : [last.host, last.repo, last.tag];
  }

  tags(): TagRow[] {
    return this.db.prepare('SELECT host, repo, tag, digest FROM tags').all() as unknown as TagRow[];
  }

  /**
   * Every row, as of one instant, read in pages on a second connection (WAL lets it keep its
   * view while this one writes) and handed to the callbacks a page per turn of the event loop,
   * so that 100k rows never hold it for long. Resolves with the tags.
   */
  snapshotRows(sink: SnapshotSink): Promise<TagRow[]> {
    const read = this.#reading.then(async () => {
      const reader = (this.#reader ??= new DatabaseSync(this.#file, { readOnly: true, timeout: 1000 }));
      reader.exec('BEGIN');
      try {
        const page = (sql: string) => reader.prepare(`${sql} LIMIT ${PAGE}`);
        await paged<EntryRow>(
          page(`SELECT ${ENTRY_COLUMNS} FROM blobs WHERE digest > ? ORDER BY digest`),
          [''],
          (row) => [row.digest],
          sink.entry,
        );
        const ref = sink.ref;
        if (ref) {
          await paged<{ parent: string; child: string }>(
            page('SELECT parent, child FROM refs WHERE (parent, child) > (?, ?) ORDER BY parent, child'),
            ['', ''],
            (row) => [row.parent, row.child],
            (row) => ref(row.parent, row.child),
          );
        }
        const tags: TagRow[] = [];
        await paged<TagRow>(
          page(
            'SELECT host, repo, tag, digest FROM tags WHERE (host, repo, tag) > (?, ?, ?) ORDER BY 1, 2, 3',
          ),
          ['', '', ''],
          (row) => [row.host, row.repo, row.tag],
          (row) => tags.push(row),
        );
        return tags;
      } finally {
        reader.exec('COMMIT');
      }
    });
    this.#reading = read.catch(() => undefined);
    return read;
  }

  tagsOf(digest: string): TagRow[] {
    return this.db
      .prepare('SELECT host, repo, tag, digest FROM tags WHERE digest = ?')
      .all(digest) as unknown as TagRow[];
  }

  /** Bytes per host (`''`: not known), summed by SQLite: ~10 ms per 100k rows. */
  /** How many blobs and manifests have a row. */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;
  }

  totals(): Map<string, number> {
    const rows = this.db
      .prepare("SELECT coalesce(host, '') AS host, sum(size) AS bytes FROM blobs GROUP BY 1")
      .all() as unknown as Array<{ host: string; bytes: number }>;
    return new Map(rows.map((row) => [row.host, row.bytes]));
  }

  getMeta(key: string): string | undefined {
    return (this.#getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.#setMeta.run(key, value);
  }

  close(): void {
    if (this.#reader?.isOpen) this.#reader.close();
    if (this.db.isOpen) this.db.close();
  }
}

/** Hands every row of a keyset-paged statement to `each`, yielding to the event loop between pages. */
async function paged<T>(
  statement: StatementSync,
  first: SQLInputValue[],
  key: (row: T) => SQLInputValue[],
  each: (row: T) => void,
): Promise<void> {
  for (let after = first; ;) {
    const rows = statement.all(...after) as unknown as T[];
    for (const row of rows) each(row);
    const last = rows.at(-1);
    if (rows.length < PAGE || last === undefined) return;
    after = key(last);
    await nextTurn();
  }
}

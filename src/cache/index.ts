// The cache index: what the cache holds (sizes, kinds, where it came from), when each piece was
// last used, what each manifest references, and the tags, kept in <cache>/index.db (node:sqlite,
// WAL) so that recency survives restarts and eviction needs no scan. The files stay the truth:
// a missing or unreadable index is rebuilt from them, and reconcile() repairs drift after a crash.
//
// Hot-path writes (record*, touch) are queued in memory and written in one transaction, at most
// FLUSH_DELAY_MS after the first or as soon as FLUSH_COUNT are queued: one fsync per batch instead
// of one per request. A crash loses at most that window: files stored meanwhile are found by the
// next reconcile, and some recency is lost. usage() counts queued writes at once.
import { mkdir, rm } from 'node:fs/promises';
import { manifestReferences } from '../oci/manifest.ts';
import { IndexDb, SCHEMA_VERSION, type EntryRow, type TagRow } from './index-db.ts';
import { exists, layoutScan, type ContentScan } from './index-scan.ts';
import { rebuild, reconcile, type SyncStats } from './index-sync.ts';
import { CacheLayout } from './layout.ts';

export type { EntryKind, EntryRow, TagRow } from './index-db.ts';
export type { SyncStats } from './index-sync.ts';

const FLUSH_DELAY_MS = 1000;
const FLUSH_COUNT = 256;
/**
 * A digest touched again within this long is not written again. Off by default: touches within
 * one flush are coalesced anyway (one tree update per digest per second at most), and an LRU
 * must tell apart two images pulled a few seconds apart (pull A, pull B, pull A again: B goes
 * first). A deployment with heavy traffic on few images may set it to a minute.
 */
const TOUCH_GRANULARITY_MS = 0;
/** Digests whose last touch is remembered for that (~100 bytes each); past it, older ones are forgotten. */
const RECENT_TOUCHES = 50_000;

/** Where content came from: the registry (`host:port`, http/destination.ts formatAuthority) and repository. */
export interface Source {
  readonly host: string;
  readonly repository?: string | undefined;
}

export interface IndexOptions {
  readonly now?: () => number;
  /** Queued writes are flushed this long after the first one (ms). */
  readonly flushDelayMs?: number;
  /** …or as soon as this many are queued. */
  readonly flushCount?: number;
  /** Touches of one digest closer together than this are written once (ms). */
  readonly touchGranularityMs?: number;
  /** A batch that could not be written (disk full, damaged file); the request path goes on. */
  readonly onError?: (error: unknown) => void;
  /** What a rebuild and reconcile() read; default: the files of the layout (layoutScan). */
  readonly scan?: ContentScan;
}

/** How open() found the index. */
export interface OpenReport {
  /** existing: used as it was; otherwise rebuilt from the files, and why. */
  readonly state: 'existing' | 'missing' | 'corrupt' | 'outdated';
  /** The previous process did not close the index: run reconcile() (in the background). */
  readonly unclean: boolean;
  readonly rebuilt?: SyncStats;
  readonly ms: number;
}

export interface Usage {
  readonly total: number;
  /** Bytes per registry `host:port` that first stored them; content of unknown origin is only in total. */
  readonly byHost: ReadonlyMap<string, number>;
}

/** What eviction reads: every entry, the references between them and the tags. */
export interface Snapshot {
  readonly entries: ReadonlyMap<string, EntryRow>;
  /** Parent manifest → the digests it references (present or not). */
  readonly children: ReadonlyMap<string, readonly string[]>;
  readonly tags: readonly TagRow[];
}

type Pending =
  | { readonly type: 'entry'; readonly row: EntryRow; readonly references?: readonly string[] }
  | { readonly type: 'tag'; readonly tag: TagRow };

export class CacheIndex {
  readonly layout: CacheLayout;
  readonly opened: OpenReport;
  readonly #db: IndexDb;
  readonly #now: () => number;
  readonly #flushDelayMs: number;
  readonly #flushCount: number;
  readonly #touchGranularityMs: number;
  readonly #recentTouches = new Map<string, number>();
  readonly #onError: (error: unknown) => void;
  readonly #scan: ContentScan;
  #pending: Pending[] = [];
  #touches = new Map<string, number>();
  #pendingBytes = 0;
  #totals: Map<string, number>;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(layout: CacheLayout, db: IndexDb, opened: OpenReport, options: IndexOptions) {
    this.layout = layout;
    this.#db = db;
    this.opened = opened;
    this.#now = options.now ?? Date.now;
    this.#flushDelayMs = options.flushDelayMs ?? FLUSH_DELAY_MS;
    this.#flushCount = options.flushCount ?? FLUSH_COUNT;
    this.#touchGranularityMs = options.touchGranularityMs ?? TOUCH_GRANULARITY_MS;
    this.#onError = options.onError ?? (() => undefined);
    this.#scan = options.scan ?? layoutScan(layout);
    this.#totals = db.totals();
  }

  /**
   * Opens <root>/index.db; when it is missing, unreadable or of another schema, rebuilds it
   * from the files first (a scan: seconds for 100k files). Otherwise no file is read.
   */
  static async open(root: string, options: IndexOptions = {}): Promise<CacheIndex> {
    const started = performance.now();
    const layout = new CacheLayout(root);
    await mkdir(layout.root, { recursive: true });
    const file = layout.indexFile;
    let state: OpenReport['state'] = (await exists(file)) ? 'existing' : 'missing';
    let db: IndexDb | undefined;
    if (state === 'existing') {
      try {
        db = new IndexDb(file);
        if (db.getMeta('schema') !== SCHEMA_VERSION) state = 'outdated';
      } catch {
        state = 'corrupt';
      }
    }
    let rebuilt: SyncStats | undefined;
    let unclean = false;
    if (state === 'existing' && db) {
      unclean = db.getMeta('open') === '1';
    } else {
      db?.close();
      // The WAL and shared-memory files belong to the old database: never replay them onto a new one.
      await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(file + suffix, { force: true })));
      db = new IndexDb(file);
      rebuilt = await rebuild(db, options.scan ?? layoutScan(layout));
      // Written last: a crash mid-rebuild leaves no version, and the next start rebuilds again.
      db.setMeta('schema', SCHEMA_VERSION);
    }
    db.setMeta('open', '1');
    const ms = performance.now() - started;
    const report: OpenReport = { state, unclean, ...(rebuilt ? { rebuilt } : {}), ms };
    return new CacheIndex(layout, db, report, options);
  }

  /** A blob stored under `digest` (layer, config, or a manifest's bytes before its meta). */
  recordBlob(digest: string, size: number, source?: Source): void {
    this.#queue({ type: 'entry', row: this.#row(digest, size, 'blob', source) });
  }

  /** A manifest stored under `digest`; its references are read from `content`. */
  recordManifest(digest: string, content: Uint8Array, source?: Source): void {
    const row = this.#row(digest, content.length, 'manifest', source);
    this.#queue({ type: 'entry', row, references: manifestReferences(content) });
  }

  /** A tag record written: `host:port`, repository, tag → manifest digest. */
  recordTag(host: string, repository: string, tag: string, digest: string): void {
    this.#queue({ type: 'tag', tag: { host, repo: repository, tag, digest } });
  }

  /**
   * `digest` was served. For a manifest, the manifests under it (an index's platform manifests)
   * are refreshed with it; its config and layers are not written, they age with the images
   * that reference them (eviction-plan.ts), so an image ages as one. Only a map update until
   * the next flush; a digest touched again within touchGranularityMs is not written again.
   */
  touch(digest: string): void {
    if (this.#closed) return;
    const now = this.#now();
    const last = this.#recentTouches.get(digest);
    if (last !== undefined && now - last < this.#touchGranularityMs) return;
    if (this.#recentTouches.size >= RECENT_TOUCHES) this.#forgetTouchesBefore(now - this.#touchGranularityMs);
    this.#recentTouches.set(digest, now);
    this.#touches.set(digest, now);
    if (this.#pending.length + this.#touches.size >= this.#flushCount) this.flush();
    else this.#schedule();
  }

  /** Blobs and manifests recorded, queued ones included (one count query: for scrapes, not loops). */
  files(): number {
    const queued = new Set<string>();
    for (const item of this.#pending) {
      if (item.type === 'entry' && !this.#db.get(item.row.digest)) queued.add(item.row.digest);
    }
    return this.#db.count() + queued.size;
  }

  /** A small value kept with the index (e.g. pins set at run time), or undefined. */
  meta(key: string): string | undefined {
    return this.#db.getMeta(key);
  }

  setMeta(key: string, value: string): void {
    this.#db.setMeta(key, value);
  }

  usage(): Usage {
    const byHost = new Map(this.#totals);
    byHost.delete('');
    let total = this.#pendingBytes;
    for (const bytes of this.#totals.values()) total += bytes;
    for (const item of this.#pending) {
      if (item.type === 'entry' && item.row.host !== null) {
        byHost.set(item.row.host, (byHost.get(item.row.host) ?? 0) + item.row.size);
      }
    }
    return { total, byHost };
  }

  get(digest: string): EntryRow | undefined {
    this.flush();
    return this.#db.get(digest);
  }

  tagsOf(digest: string): TagRow[] {
    this.flush();
    return this.#db.tagsOf(digest);
  }

  /**
   * Everything, as of one instant, for an eviction pass. Flushes first, then reads in pages
   * (100k entries: ~0.3 s in all, a few ms at a time) while the request path goes on.
   */
  async snapshot(): Promise<Snapshot> {
    this.flush();
    const entries = new Map<string, EntryRow>();
    const children = new Map<string, string[]>();
    const tags = await this.#db.snapshotRows({
      entry: (row) => entries.set(row.digest, row),
      ref: (parent, child) => {
        const list = children.get(parent);
        if (list) list.push(child);
        else children.set(parent, [child]);
      },
    });
    return { entries, children, tags };
  }

  /**
   * Drops the rows of removed files, with their references and tags, in one transaction. A row
   * stored again after `notAddedAfter` (a fill that raced the eviction) is kept.
   */
  remove(digests: readonly string[], notAddedAfter: number = this.#now()): { rows: number; bytes: number } {
    this.flush();
    let rows = 0;
    let bytes = 0;
    this.#db.transaction(() => {
      for (const digest of digests) {
        const row = this.#db.get(digest);
        if (!row || !this.#db.delete(digest, notAddedAfter, true)) continue;
        rows += 1;
        bytes += row.size;
        this.#count(row.host, -row.size);
      }
    });
    return { rows, bytes };
  }

  /**
   * Drops tag rows whose records a purge removed, in one transaction; a tag that a pull moved
   * to another digest meanwhile is kept. Returns how many went.
   */
  removeTags(tags: readonly TagRow[]): number {
    this.flush();
    let count = 0;
    this.#db.transaction(() => {
      for (const tag of tags) {
        const same = (row: TagRow) => row.host === tag.host && row.repo === tag.repo && row.tag === tag.tag;
        if (!this.#db.tagsOf(tag.digest).some(same)) continue;
        this.#db.deleteTag(tag);
        count += 1;
      }
    });
    return count;
  }

  /** Repairs drift between rows and files (see index-sync.ts). Safe while requests are served. */
  async reconcile(): Promise<SyncStats> {
    this.flush();
    const stats = await reconcile(this.#db, this.#scan);
    this.#totals = this.#db.totals();
    return stats;
  }

  /** Writes every queued change now. Never throws: a failed batch goes to onError. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || (this.#pending.length === 0 && this.#touches.size === 0)) return;
    const pending = this.#pending;
    const touches = this.#touches;
    this.#pending = [];
    this.#touches = new Map();
    this.#pendingBytes = 0;
    try {
      this.#db.transaction(() => this.#write(pending, touches));
    } catch (error) {
      this.#totals = this.#db.totals();
      this.#onError(error);
    }
  }

  /**
   * Flushes and closes; marks the index as closed cleanly. Never throws: on a full or failing
   * disk the mark stays unwritten (reported to onError), and the next start reconciles.
   */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    try {
      this.#db.setMeta('open', '0');
    } catch (error) {
      this.#onError(error);
    }
    try {
      this.#db.close();
    } catch (error) {
      this.#onError(error);
    }
  }

  #write(pending: readonly Pending[], touches: ReadonlyMap<string, number>): void {
    for (const item of pending) {
      if (item.type === 'tag') {
        this.#db.upsertTag(item.tag);
        continue;
      }
      const before = this.#db.get(item.row.digest);
      this.#db.upsert(item.row);
      if (before) this.#count(before.host, -before.size);
      this.#count(before?.host ?? item.row.host, item.row.size);
      if (item.references) this.#db.setRefs(item.row.digest, item.references);
    }
    for (const [digest, at] of touches) this.#db.touchTree(digest, at);
  }

  /** Drops remembered touches older than `cutoff` (they no longer save a write), or all if none is. */
  #forgetTouchesBefore(cutoff: number): void {
    for (const [digest, at] of this.#recentTouches) if (at < cutoff) this.#recentTouches.delete(digest);
    if (this.#recentTouches.size >= RECENT_TOUCHES) this.#recentTouches.clear();
  }

  #row(digest: string, size: number, kind: EntryRow['kind'], source: Source | undefined): EntryRow {
    const now = this.#now();
    const host = source?.host ?? null;
    return { digest, size, kind, host, repo: source?.repository ?? null, lastUsed: now, added: now };
  }

  #queue(item: Pending): void {
    if (this.#closed) return;
    this.#pending.push(item);
    if (item.type === 'entry') this.#pendingBytes += item.row.size;
    if (this.#pending.length + this.#touches.size >= this.#flushCount) this.flush();
    else this.#schedule();
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => this.flush(), this.#flushDelayMs);
    this.#timer.unref();
  }

  #count(host: string | null, bytes: number): void {
    const key = host ?? '';
    this.#totals.set(key, (this.#totals.get(key) ?? 0) + bytes);
  }
}

// The eviction policy over a snapshot of the index, in memory and without I/O: which images
// exist, how recently each was used, what removing one would free, and what pins protect.
//
// An image is a root: a present manifest no other present manifest references (a tagged image,
// an index, a manifest pulled by digest), or a blob nothing references. Its recency is the
// latest use of any manifest under it (a platform manifest pulled by digest keeps its index
// alive), never of its layers: a base layer every image shares must not make them all recent.
// Removing an image removes the root and, parents first, whatever no remaining manifest still
// references; a layer shared with another image stays.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EntryRow, Snapshot } from './index.ts';
import type { Pins } from '../config/pins.ts';

export interface Image {
  readonly root: string;
  /** Latest use of the root or of any manifest under it. */
  readonly lastUsed: number;
  /** Registry (`host:port`) that stored the root; null when not known. */
  readonly host: string | null;
}

/** Items handled between two turns of the event loop while a plan is built: a few ms each. */
const CHUNK = 8192;

export class EvictionPlan {
  readonly #entries: ReadonlyMap<string, EntryRow>;
  readonly #children: ReadonlyMap<string, readonly string[]>;
  readonly #gone = new Set<string>();
  /** Present manifests referencing each digest. */
  readonly #parents = new Map<string, number>();
  /** Pinned digests and everything under them. */
  readonly #pinned = new Set<string>();
  readonly #byHost = new Map<string, number>();
  #images: Image[] = [];
  #pinnedRoots: string[] = [];
  #total = 0;

  private constructor(snapshot: Snapshot) {
    this.#entries = snapshot.entries;
    this.#children = snapshot.children;
  }

  /** The plan over `snapshot` (which it keeps), built a chunk at a time: 100k entries never block for long. */
  static async build(snapshot: Snapshot, pins: Pins): Promise<EvictionPlan> {
    const plan = new EvictionPlan(snapshot);
    await chunked(snapshot.entries.values(), (entry) => plan.#count(entry));
    for (const digest of pinnedDigests(snapshot, pins)) plan.#protect(digest);
    await chunked(snapshot.entries.keys(), (digest) => {
      if (plan.#parents.has(digest)) return;
      const entry = snapshot.entries.get(digest);
      if (plan.#pinned.has(digest)) plan.#pinnedRoots.push(digest);
      else plan.#images.push({ root: digest, lastUsed: plan.#recency(digest), host: entry?.host ?? null });
    });
    plan.#images.sort((a, b) => a.lastUsed - b.lastUsed);
    return plan;
  }

  /** Unpinned images, least recently used first, as they were when the plan was built. */
  get images(): readonly Image[] {
    return this.#images;
  }

  get pinnedRoots(): readonly string[] {
    return this.#pinnedRoots;
  }

  /** Bytes of everything present. */
  get total(): number {
    return this.#total;
  }

  /** Bytes stored by each registry `host:port` (content of unknown origin is only in total). */
  get byHost(): ReadonlyMap<string, number> {
    return this.#byHost;
  }

  /** Bytes of pinned content: never freed by eviction. */
  get pinnedBytes(): number {
    let bytes = 0;
    for (const digest of this.#pinned) bytes += this.#entries.get(digest)?.size ?? 0;
    return bytes;
  }

  has(digest: string): boolean {
    return this.#entries.has(digest) && !this.#gone.has(digest);
  }

  /** What evicting `root` would remove, parents before children. Empty if it is gone or pinned. */
  removal(root: string): EntryRow[] {
    const rootEntry = this.#present(root);
    if (!rootEntry || this.#pinned.has(root)) return [];
    const out = [rootEntry];
    const left = new Map<string, number>();
    for (let i = 0; i < out.length; i++) {
      this.#eachChild(out[i]?.digest ?? '', (child, entry) => {
        const count = (left.get(child) ?? this.#parents.get(child) ?? 0) - 1;
        left.set(child, count);
        if (count === 0 && !this.#pinned.has(child)) out.push(entry);
      });
    }
    return out;
  }

  /** Records that these entries are gone (their files and rows removed). */
  removed(digests: readonly string[]): void {
    for (const digest of digests) {
      const entry = this.#present(digest);
      if (!entry) continue;
      this.#eachChild(digest, (child) => {
        const count = (this.#parents.get(child) ?? 1) - 1;
        if (count > 0) this.#parents.set(child, count);
        else this.#parents.delete(child);
      });
      this.#gone.add(digest);
      this.#total -= entry.size;
      if (entry.host !== null) this.#byHost.set(entry.host, (this.#byHost.get(entry.host) ?? 0) - entry.size);
    }
  }

  #present(digest: string): EntryRow | undefined {
    return this.#gone.has(digest) ? undefined : this.#entries.get(digest);
  }

  #count(entry: EntryRow): void {
    this.#total += entry.size;
    if (entry.host !== null) this.#byHost.set(entry.host, (this.#byHost.get(entry.host) ?? 0) + entry.size);
    this.#eachChild(entry.digest, (child) => this.#parents.set(child, (this.#parents.get(child) ?? 0) + 1));
  }

  /** Calls `fn` for each present digest a present manifest references. */
  #eachChild(digest: string, fn: (child: string, entry: EntryRow) => void): void {
    if (this.#present(digest)?.kind !== 'manifest') return;
    for (const child of this.#children.get(digest) ?? []) {
      const entry = this.#present(child);
      if (entry) fn(child, entry);
    }
  }

  #protect(digest: string): void {
    if (this.#pinned.has(digest) || !this.#present(digest)) return;
    this.#pinned.add(digest);
    this.#eachChild(digest, (child) => this.#protect(child));
  }

  #recency(root: string): number {
    let latest = this.#entries.get(root)?.lastUsed ?? 0;
    const seen = new Set([root]);
    const stack = [root];
    for (let digest = stack.pop(); digest !== undefined; digest = stack.pop()) {
      this.#eachChild(digest, (child, entry) => {
        if (seen.has(child) || entry.kind !== 'manifest') return;
        seen.add(child);
        latest = Math.max(latest, entry.lastUsed);
        stack.push(child);
      });
    }
    return latest;
  }
}

async function chunked<T>(items: Iterable<T>, fn: (item: T) => void): Promise<void> {
  let count = 0;
  for (const item of items) {
    fn(item);
    if (++count % CHUNK === 0) await nextTurn();
  }
}

/** Digests the pins name: tags they match, manifests stored for repositories they hold whole, digests. */
function pinnedDigests(snapshot: Snapshot, pins: Pins): Set<string> {
  const pinned = new Set<string>(pins.digests);
  if (pins.empty) return pinned;
  for (const tag of snapshot.tags) if (pins.tag(tag.host, tag.repo, tag.tag)) pinned.add(tag.digest);
  for (const entry of snapshot.entries.values()) {
    if (entry.kind === 'manifest' && entry.host !== null && entry.repo !== null) {
      if (pins.repository(entry.host, entry.repo)) pinned.add(entry.digest);
    }
  }
  return pinned;
}

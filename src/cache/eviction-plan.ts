// The eviction policy over a snapshot of the index, in memory and without I/O: which images
// exist, how recently each was used, what removing one would free, and what pins protect.
//
// An image is a root: a present manifest no other present manifest references (a tagged image,
// an index, a manifest pulled by digest), or a blob nothing references. Its recency is the
// latest use of any manifest under it (a platform manifest pulled by digest keeps its index
// alive), never of its layers: a base layer every image shares must not make them all recent.
// Removing an image removes the root and, parents first, whatever no remaining manifest still
// references; a layer shared with another image stays.
import type { EntryRow, Snapshot } from './index.ts';
import type { Pins } from './pins.ts';

export interface Image {
  readonly root: string;
  /** Latest use of the root or of any manifest under it. */
  readonly lastUsed: number;
  /** Registry (`host:port`) that stored the root; null when not known. */
  readonly host: string | null;
}

export class EvictionPlan {
  readonly #entries: Map<string, EntryRow>;
  readonly #children: ReadonlyMap<string, readonly string[]>;
  /** Present manifests referencing each digest. */
  readonly #parents = new Map<string, number>();
  /** Pinned digests and everything under them. */
  readonly #pinned = new Set<string>();
  readonly #byHost = new Map<string, number>();
  readonly images: readonly Image[];
  readonly pinnedRoots: readonly string[];
  #total = 0;

  constructor(snapshot: Snapshot, pins: Pins) {
    this.#entries = new Map(snapshot.entries);
    this.#children = snapshot.children;
    for (const entry of this.#entries.values()) {
      this.#total += entry.size;
      if (entry.host !== null) this.#byHost.set(entry.host, (this.#byHost.get(entry.host) ?? 0) + entry.size);
      for (const child of this.#childrenOf(entry.digest)) {
        this.#parents.set(child, (this.#parents.get(child) ?? 0) + 1);
      }
    }
    for (const digest of pinnedDigests(snapshot, pins)) this.#protect(digest);
    const roots = [...this.#entries.keys()].filter((digest) => !this.#parents.has(digest));
    this.pinnedRoots = roots.filter((digest) => this.#pinned.has(digest));
    this.images = roots
      .filter((digest) => !this.#pinned.has(digest))
      .map((root) => ({ root, lastUsed: this.#recency(root), host: this.#entries.get(root)?.host ?? null }))
      .sort((a, b) => a.lastUsed - b.lastUsed);
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
    return this.#entries.has(digest);
  }

  entry(digest: string): EntryRow | undefined {
    return this.#entries.get(digest);
  }

  /** What evicting `root` would remove, parents before children. Empty if it is gone. */
  removal(root: string): EntryRow[] {
    const rootEntry = this.#entries.get(root);
    if (!rootEntry || this.#pinned.has(root)) return [];
    const out = [rootEntry];
    const left = new Map<string, number>();
    for (let i = 0; i < out.length; i++) {
      for (const child of this.#childrenOf(out[i]?.digest ?? '')) {
        const count = (left.get(child) ?? this.#parents.get(child) ?? 0) - 1;
        left.set(child, count);
        const entry = this.#entries.get(child);
        if (count === 0 && entry && !this.#pinned.has(child)) out.push(entry);
      }
    }
    return out;
  }

  /** Records that these entries are gone (their files and rows removed). */
  removed(digests: readonly string[]): void {
    for (const digest of digests) {
      const entry = this.#entries.get(digest);
      if (!entry) continue;
      for (const child of this.#childrenOf(digest)) {
        const count = (this.#parents.get(child) ?? 1) - 1;
        if (count > 0) this.#parents.set(child, count);
        else this.#parents.delete(child);
      }
      this.#entries.delete(digest);
      this.#total -= entry.size;
      if (entry.host !== null) this.#byHost.set(entry.host, (this.#byHost.get(entry.host) ?? 0) - entry.size);
    }
  }

  /** Present digests a present manifest references (each once). */
  #childrenOf(digest: string): string[] {
    if (this.#entries.get(digest)?.kind !== 'manifest') return [];
    return (this.#children.get(digest) ?? []).filter((child) => this.#entries.has(child));
  }

  #protect(digest: string): void {
    if (this.#pinned.has(digest) || !this.#entries.has(digest)) return;
    this.#pinned.add(digest);
    for (const child of this.#childrenOf(digest)) this.#protect(child);
  }

  #recency(root: string): number {
    let latest = this.#entries.get(root)?.lastUsed ?? 0;
    const seen = new Set([root]);
    const stack = [root];
    for (let digest = stack.pop(); digest !== undefined; digest = stack.pop()) {
      for (const child of this.#childrenOf(digest)) {
        const entry = this.#entries.get(child);
        if (seen.has(child) || entry?.kind !== 'manifest') continue;
        seen.add(child);
        latest = Math.max(latest, entry.lastUsed);
        stack.push(child);
      }
    }
    return latest;
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

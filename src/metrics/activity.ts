// What the dashboard lists beside the counters, kept in memory since start: the most recent
// evictions and admin changes (purges, pins), and how often each tag was pulled (a GET of a
// manifest by tag that succeeded), so that the cache browser can show hits and the most-pulled
// images. Bounded: the newest events, and tags up to a cap (the least recently pulled go first).

export interface ActivityEvent {
  /** ms since the epoch. */
  readonly t: number;
  /** `evicted`, `admin purge`, `admin pin`... */
  readonly event: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface TagPulls {
  /** `host:port`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly pulls: number;
  /** ms since the epoch. */
  readonly lastPulled: number;
}

/** `/v2/<name>/manifests/<tag>`: a tag, not a digest (those have a colon). */
const MANIFEST_BY_TAG = /^\/v2\/(.+)\/manifests\/([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/;

export class Activity {
  readonly #events: ActivityEvent[] = [];
  readonly #pulls = new Map<
    string,
    { registry: string; repository: string; tag: string; pulls: number; lastPulled: number }
  >();
  readonly #keepEvents: number;
  readonly #keepTags: number;
  readonly #now: () => number;

  constructor(options: { keepEvents?: number; keepTags?: number; now?: () => number } = {}) {
    this.#keepEvents = options.keepEvents ?? 100;
    this.#keepTags = options.keepTags ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  event(event: string, fields: Readonly<Record<string, unknown>>): void {
    this.#events.push({ t: this.#now(), event, fields });
    if (this.#events.length > this.#keepEvents) this.#events.shift();
  }

  /** Newest first. */
  events(): ActivityEvent[] {
    return [...this.#events].reverse();
  }

  /** One answered registry request: counted when it was a successful GET of a manifest by tag. */
  request(registry: string, method: string | undefined, url: string | undefined, status: number): void {
    if (method !== 'GET' || status !== 200 || url === undefined) return;
    const match = MANIFEST_BY_TAG.exec(url.split('?', 1)[0] ?? '');
    if (!match) return;
    const [, repository, tag] = match as unknown as [string, string, string];
    const key = `${registry}/${repository}:${tag}`;
    const entry = this.#pulls.get(key) ?? { registry, repository, tag, pulls: 0, lastPulled: 0 };
    entry.pulls += 1;
    entry.lastPulled = this.#now();
    this.#pulls.delete(key); // re-inserted last: the map's order is least recently pulled first
    this.#pulls.set(key, entry);
    if (this.#pulls.size > this.#keepTags) this.#pulls.delete(this.#pulls.keys().next().value!);
  }

  pulls(): TagPulls[] {
    return [...this.#pulls.values()].map((entry) => ({ ...entry }));
  }
}

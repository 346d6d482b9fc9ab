// The tag → digest records (cache/manifests.ts TagRecord) shared between replicas in Redis:
// `<prefix>tag:<host>/<repository>:<tag>` holds the record as JSON, so a tag confirmed upstream by
// one replica is fresh on all for tagTtl, whatever storage each has. Kept a week after its last
// write; the local record stays the fallback (and the one served stale) while Redis is down.
import type { Redis } from 'ioredis';
import type { SharedTags, TagRecord } from '../cache/manifests.ts';

const KEEP_MS = 7 * 24 * 3_600_000;

export class RedisTags implements SharedTags {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = `${prefix}tag:`;
  }

  async get(host: string, name: string, tag: string): Promise<TagRecord | undefined> {
    const value = await this.#redis.get(this.#key(host, name, tag));
    if (value === null) return undefined;
    const record = JSON.parse(value) as Partial<TagRecord>;
    const valid =
      typeof record.digest === 'string' &&
      typeof record.mediaType === 'string' &&
      typeof record.size === 'number' &&
      typeof record.checkedAt === 'number';
    return valid ? (record as TagRecord) : undefined;
  }

  async put(host: string, name: string, tag: string, record: TagRecord): Promise<void> {
    await this.#redis.set(this.#key(host, name, tag), JSON.stringify(record), 'PX', KEEP_MS);
  }

  #key(host: string, name: string, tag: string): string {
    return `${this.#prefix}${host}/${name}:${tag}`;
  }
}

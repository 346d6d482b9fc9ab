// Which repositories' digests upstream served to anonymous requests, and when it last did, kept
// on disk so that the knowledge survives a restart: a proxy restarted during an upstream outage
// still serves public images offline, and still refuses the rest. One empty file per host,
// repository and digest, named by their hash (layout.ts); its mtime is the time of the last
// anonymous answer. Writing one is best effort.
import { createHash } from 'node:crypto';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CacheLayout } from './layout.ts';

export interface PublicKey {
  readonly host: string;
  readonly name: string;
  readonly digest: string;
}

export class PublicMarks {
  readonly #layout: CacheLayout;

  constructor(layout: CacheLayout) {
    this.#layout = layout;
  }

  /** When upstream last served it anonymously (ms since the epoch), or undefined. */
  async get(key: PublicKey): Promise<number | undefined> {
    try {
      return (await stat(this.#layout.publicMarkPath(publicKeyHash(key)))).mtimeMs;
    } catch {
      return undefined;
    }
  }

  async put(key: PublicKey, at: number): Promise<void> {
    const file = this.#layout.publicMarkPath(publicKeyHash(key));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '');
    const seconds = at / 1000;
    await utimes(file, seconds, seconds);
  }
}

export function publicKeyHash(key: PublicKey): string {
  return createHash('sha256').update(`${key.host}\0${key.name}\0${key.digest}`).digest('hex');
}

// Which digests are public, kept on disk so that the knowledge survives a restart: a proxy
// restarted during an upstream outage still serves public images offline, and still refuses
// the rest. An empty file per digest (layout.ts); writing one is best effort.
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDigest } from '../oci/digest.ts';
import type { CacheLayout } from './layout.ts';

export class PublicMarks {
  readonly #layout: CacheLayout;

  constructor(layout: CacheLayout) {
    this.#layout = layout;
  }

  async has(digest: string): Promise<boolean> {
    const parsed = parseDigest(digest);
    if (!parsed) return false;
    try {
      await stat(this.#layout.publicMarkPath(parsed));
      return true;
    } catch {
      return false;
    }
  }

  async add(digest: string): Promise<void> {
    const parsed = parseDigest(digest);
    if (!parsed) return;
    const file = this.#layout.publicMarkPath(parsed);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '');
  }
}

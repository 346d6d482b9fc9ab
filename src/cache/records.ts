// The small JSON records beside the blobs, behind one interface so that another backend (an S3
// bucket: storage/) can hold them: a manifest's media type, and what a tag last resolved to.
// DiskRecords keeps them as files of the cache layout, written to tmp/ and renamed into place.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ParsedDigest } from '../oci/digest.ts';
import type { CacheLayout } from './layout.ts';

/** Which record: built only from a validated digest, or host, name and tag (layout.ts checks them). */
export type RecordKey =
  | { readonly kind: 'manifest'; readonly digest: ParsedDigest }
  | { readonly kind: 'tag'; readonly host: string; readonly name: string; readonly tag: string }
  | {
      readonly kind: 'referrers';
      readonly host: string;
      readonly name: string;
      readonly subject: ParsedDigest;
      /** The request's artifactType filter; '' for none. */
      readonly artifactType: string;
    };

export interface RecordStore {
  /** The record, or undefined when there is none (or it cannot be read as JSON). */
  read<T>(key: RecordKey): Promise<T | undefined>;
  /** Writes the whole record at once; rejects with an error whose `path` says where it failed. */
  write(key: RecordKey, value: object): Promise<void>;
  /** Removes the record; a missing one is fine. */
  remove(key: RecordKey): Promise<void>;
}

export class DiskRecords implements RecordStore {
  readonly #layout: CacheLayout;

  constructor(layout: CacheLayout) {
    this.#layout = layout;
  }

  read<T>(key: RecordKey): Promise<T | undefined> {
    return readJson<T>(this.#path(key));
  }

  async write(key: RecordKey, value: object): Promise<void> {
    const file = this.#path(key);
    const temp = path.join(this.#layout.tmpDir, `json.${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(temp, JSON.stringify(value));
      await mkdir(path.dirname(file), { recursive: true });
      await rename(temp, file);
    } catch (error) {
      // A full disk leaves an empty or partial temp file behind writeFile: not until next start.
      await rm(temp, { force: true }).catch(() => undefined);
      throw error; // the errno names the file that failed
    }
  }

  async remove(key: RecordKey): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  #path(key: RecordKey): string {
    if (key.kind === 'manifest') return this.#layout.manifestMetaPath(key.digest);
    if (key.kind === 'referrers')
      return this.#layout.referrersPath(key.host, key.name, key.subject, key.artifactType);
    return this.#layout.tagPath(key.host, key.name, key.tag);
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    // Missing (a directory on its path missing or not a directory), or unreadable as JSON
    // (writes are atomic, so only outside damage does that): either way there is no record, and
    // upstream will be asked.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

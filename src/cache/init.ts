// Bringing a cache directory into service at start: its directories made, the temp files of a
// previous process removed, and one probe write that says whether it can be written now. A cache
// that cannot be written (read-only, full, no permission) is still served from: starting never
// fails because of it, and fills then relay what they fetch without storing it.
import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CacheLayout } from './layout.ts';

export type CacheInit =
  | { readonly sweptTempFiles: number; readonly writable: true }
  | {
      readonly sweptTempFiles: number;
      readonly writable: false;
      /** The file system's error code: EROFS, EACCES, EPERM, ENOSPC or EDQUOT. */
      readonly code: string;
      /** One sentence for the operator, naming the directory. */
      readonly reason: string;
    };

/** Errors that say the directory cannot be written now (not that the configuration is wrong). */
const UNWRITABLE: Readonly<Record<string, string>> = {
  EROFS: 'read-only',
  EACCES: 'not writable (permission denied)',
  EPERM: 'not writable (operation not permitted)',
  ENOSPC: 'full',
  EDQUOT: 'over its disk quota',
};

export interface InitOptions {
  /** Temp files written to this recently are kept: another process sharing the directory may own them. */
  readonly keepTempNewerThanMs?: number;
}

export async function initCacheDir(layout: CacheLayout, options: InitOptions = {}): Promise<CacheInit> {
  let swept = 0;
  try {
    await mkdir(layout.blobsDir, { recursive: true });
    await mkdir(layout.tmpDir, { recursive: true });
    for (const name of await readdir(layout.tmpDir)) {
      const file = path.join(layout.tmpDir, name);
      if (options.keepTempNewerThanMs !== undefined && (await recent(file, options.keepTempNewerThanMs)))
        continue;
      await rm(file, { recursive: true, force: true });
      swept++;
    }
    await probe(layout.tmpDir);
    return { sweptTempFiles: swept, writable: true };
  } catch (error) {
    const code = await unwritableCode(error, layout.root);
    if (code === undefined) throw error;
    const state = UNWRITABLE[code]!;
    const reason = (await hasEntries(layout.blobsDir))
      ? `cache directory ${layout.root} is ${state}: serving what is cached, relaying the rest uncached`
      : `cache directory ${layout.root} is ${state} and empty: nothing cached to serve`;
    return { sweptTempFiles: swept, writable: false, code, reason };
  }
}

async function recent(file: string, ms: number): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs < ms;
}

/** Creating the directories proves little (they may exist): one small file says more. */
async function probe(tmpDir: string): Promise<void> {
  const file = path.join(tmpDir, `probe.${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(file, 'pullthrough write probe\n', { flag: 'wx' });
  } finally {
    await rm(file, { force: true }).catch(() => undefined);
  }
}

async function unwritableCode(error: unknown, root: string): Promise<string | undefined> {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && code in UNWRITABLE) return code;
  if (code !== 'ENOENT') return undefined;
  // A recursive mkdir reports ENOENT, not EROFS, when the directory it would create a child in
  // is read-only: ask the nearest directory that exists whether it may be written.
  for (let dir = root; ; dir = path.dirname(dir)) {
    try {
      await access(dir, constants.W_OK);
      return undefined;
    } catch (denied) {
      const deniedCode = (denied as NodeJS.ErrnoException).code;
      if (deniedCode !== undefined && deniedCode in UNWRITABLE) return deniedCode;
      if (deniedCode !== 'ENOENT' || path.dirname(dir) === dir) return undefined;
    }
  }
}

async function hasEntries(dir: string): Promise<boolean> {
  return readdir(dir).then(
    (names) => names.length > 0,
    () => false,
  );
}

// File systems made for a test: a tmpfs of a given size (to fill a cache up), remounted read-only
// or read-write on demand. Mounted inside the world's directory, so the world's stop (or the
// next run's stale cleanup) unmounts them (cleanup.ts removeWorldDir). Needs root.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

function mount(args: readonly string[]): void {
  const result = spawnSync('mount', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`mount ${args.join(' ')}: ${result.stderr.trim()}`);
}

/** A new tmpfs of `size` (e.g. `8m`) at `dir`. */
export function mountTmpfs(dir: string, size: string): string {
  mkdirSync(dir, { recursive: true });
  mount(['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  return dir;
}

export function remount(dir: string, mode: 'ro' | 'rw'): void {
  mount(['-o', `remount,${mode}`, dir]);
}

/**
 * Makes `dir` read-only for everyone from now on, files already open for writing elsewhere in
 * the file system notwithstanding (a remount of the whole file system would be refused as busy
 * while the cache's index is open): a read-only bind mount of `dir` onto itself.
 */
export function bindReadOnly(dir: string): void {
  mount(['--bind', dir, dir]);
  mount(['-o', 'remount,bind,ro', dir]);
}

/** Fills the file system of `dir` to the last block with one file of zeros. */
export function fillUp(dir: string): void {
  // dd stops with "No space left on device" and a non-zero status: that is the point.
  spawnSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=64k'], { encoding: 'utf8' });
  const df = spawnSync('df', ['--output=avail', '-B1', dir], { encoding: 'utf8' });
  const available = Number(df.stdout.trim().split('\n').at(-1));
  if (available !== 0) throw new Error(`${dir} still has ${available} bytes free after filling it`);
}

/** What is left in a cache's tmp/ (temp files of fills and records). */
export function tempFiles(cacheDir: string): string[] {
  try {
    return readdirSync(join(cacheDir, 'tmp'));
  } catch {
    return [];
  }
}

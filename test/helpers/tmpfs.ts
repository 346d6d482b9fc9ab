// Small or read-only disks for tests of a cache that cannot be written: a tmpfs mounted on a
// fresh directory, unmounted and removed after the test. Mounting needs root (or CAP_SYS_ADMIN);
// where it is refused, mountTmpfs resolves undefined and the caller skips.
import { execFile } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';

const run = promisify(execFile);

/**
 * Mounts a tmpfs of `size` (as mount(8) takes it: `8m`) and resolves its directory. Register it
 * before anything that keeps files open in it: teardown hooks run in reverse order.
 */
export async function mountTmpfs(size: string): Promise<string | undefined> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pullthrough-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  } catch {
    await rmdir(dir);
    return undefined;
  }
  onTestFinished(async () => {
    // Lazily if something still holds a file there: the mount goes once it is closed.
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
    await rmdir(dir);
  });
  return dir;
}

/** Makes a mounted tmpfs read-only: root cannot write it either (chmod would not stop root). */
export async function remountReadOnly(dir: string): Promise<void> {
  await run('mount', ['-o', 'remount,ro', dir]);
}

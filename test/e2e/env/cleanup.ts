// Cleans up after e2e worlds: what one world leaves (its temp dir, mounts under it, files it placed
// outside it) and, at the start of the next run, whatever a crashed run left behind: processes it
// recorded (killed by PID, only while /proc shows the same command line), tagged /etc/hosts lines
// and its temp dir. Also a script: `node test/e2e/env/cleanup.ts`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hosts } from './hosts.ts';

export const WORLD_PREFIX = 'pullthrough-e2e-';
/** In a world dir: `PID\t["cmd","arg",…]` per started daemon. */
export const PIDS_FILE = 'pids';
/**
 * In a world dir: what the world made outside itself, one `HOW\tPATH` per line in creation order.
 * HOW is `file`, `dir` (removed only if empty) or `tree` (a path that did not exist before the
 * world's clients created it, removed recursively).
 */
export const OUTSIDE_FILE = 'outside';
export type OutsideKind = 'file' | 'dir' | 'tree';

function cmdline(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return undefined; // a zombie is already dead
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
}

/** SIGKILLs the recorded processes that still run the recorded command; returns their PIDs. */
function killRecorded(pidsFile: string): number[] {
  if (!existsSync(pidsFile)) return [];
  const killed: number[] = [];
  for (const entry of readFileSync(pidsFile, 'utf8').split('\n')) {
    const [pidText, argvJson] = entry.split('\t');
    if (pidText === undefined || argvJson === undefined) continue;
    const pid = Number(pidText);
    const recorded = JSON.parse(argvJson) as string[];
    const live = cmdline(pid);
    // argv[0] may be rewritten to a full path by the kernel/exec; compare the arguments.
    if (live === undefined || live.slice(1).join('\0') !== recorded.slice(1).join('\0')) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  // SIGKILL takes effect at once, but /proc may show the process a moment longer.
  const deadline = Date.now() + 5_000;
  while (killed.some((pid) => cmdline(pid) !== undefined) && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // a synchronous 50 ms pause
  }
  return killed;
}

/** Removes what a world placed outside its dir (recorded in OUTSIDE_FILE), newest first. */
export function removeOutside(worldDir: string): void {
  const file = join(worldDir, OUTSIDE_FILE);
  if (!existsSync(file)) return;
  const entries = readFileSync(file, 'utf8').split('\n').filter(Boolean).reverse();
  for (const entry of entries) {
    const [how, path] = entry.split('\t') as [OutsideKind, string | undefined];
    if (path === undefined || !path.startsWith('/')) continue;
    try {
      if (how === 'dir') rmdirSync(path);
      else rmSync(path, { force: true, recursive: how === 'tree' });
    } catch {
      // gone already, or a directory someone else has since put files in: it stays
    }
  }
}

/** Unmounts everything mounted at or under `dir` (deepest first), then removes `dir`. */
export function removeWorldDir(dir: string): void {
  const mountPoints = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mountPoints) spawnSync('umount', ['-l', point]);
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Cleans up after crashed runs; returns one line saying what it found. */
export function cleanStale(): string {
  const found: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(WORLD_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const killed = killRecorded(join(dir, PIDS_FILE));
    removeOutside(dir);
    removeWorldDir(dir);
    found.push(killed.length > 0 ? `${dir} (killed ${killed.join(', ')})` : dir);
  }
  const removed = hosts.remove();
  if (removed > 0) found.push(`${removed} /etc/hosts line(s)`);
  return found.length === 0 ? 'nothing stale' : `removed stale ${found.join(', ')}`;
}

if (import.meta.main) console.log(`e2e cleanup: ${cleanStale()}`);

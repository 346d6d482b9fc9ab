// CPU time used by the servers while they serve (user + system, every thread: TLS, hashing,
// the V8 GC helpers and libuv's file I/O threads alike), read from /proc. Reported per GiB
// served so that efficiency shows even where the 2 cores shared by client and server, not the
// server, set the throughput.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function stat(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is [0], ppid [1], utime [11], stime [12].
    return raw.slice(raw.lastIndexOf(') ') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = stat(pid);
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

/** `pid` and its direct children (nginx's master and its workers). */
export function withChildren(pid: number): number[] {
  const children = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => stat(child)?.[1] === String(pid));
  return [pid, ...children];
}

/** Adds up the CPU seconds `pids()` use during measured calls, and the bytes those calls moved. */
export class CpuMeter {
  readonly #pids: () => readonly number[];
  #seconds = 0;
  #bytes = 0;

  constructor(pids: () => readonly number[]) {
    this.#pids = pids;
  }

  async around<T>(bytes: number, measured: () => Promise<T>): Promise<T> {
    const pids = this.#pids();
    const before = cpuSeconds(pids);
    const result = await measured();
    this.#seconds += cpuSeconds(pids) - before;
    this.#bytes += bytes;
    return result;
  }

  /** CPU seconds per GiB moved so far. */
  secondsPerGiB(): number {
    return this.#seconds / (this.#bytes / 2 ** 30);
  }

  /** `1.9 CPU-s/GiB`. */
  perGiB(): string {
    return `${this.secondsPerGiB().toFixed(2)} CPU-s/GiB`;
  }
}

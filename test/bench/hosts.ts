// The benchmark's names in /etc/hosts: Go clients (skopeo, distribution) never send loopback IP
// literals or `localhost` through a proxy, so each registry needs a name on a 127.0.0.x address.
// Every line carries TAG so the end of a run, and the start of the next after a crash, remove
// exactly those. The file is rewritten in place, never renamed over: in a container /etc/hosts is
// often a bind mount, and a rename would detach it.
import { readFileSync, writeFileSync } from 'node:fs';

const HOSTS_FILE = '/etc/hosts';
const TAG = '# pullthrough-bench';

export interface HostEntry {
  readonly name: string;
  readonly ip: string;
}

function rewrite(transform: (lines: string[]) => string[]): void {
  const text = readFileSync(HOSTS_FILE, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const next = transform(lines);
  const out = next.length === 0 ? '' : `${next.join('\n')}\n`;
  if (out !== text) writeFileSync(HOSTS_FILE, out);
}

/** Removes every tagged line, ours from this run or from an earlier one that crashed. */
export function removeTaggedHosts(): void {
  rewrite((lines) => lines.filter((line) => !line.endsWith(TAG)));
}

/** Replaces any tagged lines with `entries`. */
export function setTaggedHosts(entries: readonly HostEntry[]): void {
  rewrite((lines) => [
    ...lines.filter((line) => !line.endsWith(TAG)),
    ...entries.map((entry) => `${entry.ip}\t${entry.name}\t${TAG}`),
  ]);
}

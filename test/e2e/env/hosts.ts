// The e2e world's names in /etc/hosts: each line carries TAG so teardown (and the next run, after a
// crash) can remove exactly those. The file is rewritten in place, never renamed over: in a
// container /etc/hosts is often a bind mount, and a rename would detach it.
import { readFileSync, writeFileSync } from 'node:fs';

export const HOSTS_FILE = '/etc/hosts';
export const TAG = '# pullthrough-e2e';

export interface HostEntry {
  name: string;
  ip: string;
}

function rewrite(transform: (lines: string[]) => string[]): void {
  const text = readFileSync(HOSTS_FILE, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const next = transform(lines);
  const out = next.length === 0 ? '' : `${next.join('\n')}\n`;
  if (out !== text) writeFileSync(HOSTS_FILE, out);
}

/** Removes every tagged line; returns how many there were. */
export function removeTaggedHosts(): number {
  let removed = 0;
  rewrite((lines) =>
    lines.filter((line) => {
      const tagged = line.endsWith(TAG);
      if (tagged) removed++;
      return !tagged;
    }),
  );
  return removed;
}

/** Replaces any tagged lines with `entries`. */
export function setTaggedHosts(entries: readonly HostEntry[]): void {
  rewrite((lines) => [
    ...lines.filter((line) => !line.endsWith(TAG)),
    ...entries.map((entry) => `${entry.ip}\t${entry.name}\t${TAG}`),
  ]);
}

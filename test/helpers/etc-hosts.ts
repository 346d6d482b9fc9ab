// Names in /etc/hosts for test and bench worlds: Go clients (skopeo, distribution) never send
// loopback IP literals or `localhost` through a proxy, so each fake registry needs a name. Every
// line carries the owner's tag so that teardown, and the next run after a crash, remove exactly
// those. The file is rewritten in place, never renamed over: in a container /etc/hosts is often a
// bind mount, and a rename would detach it.
import { readFileSync, writeFileSync } from 'node:fs';

const HOSTS_FILE = '/etc/hosts';

export interface HostEntry {
  readonly name: string;
  readonly ip: string;
}

export class TaggedHosts {
  readonly #tag: string;

  /** `tag`: a comment that ends each of this owner's lines, e.g. `# pullthrough-e2e`. */
  constructor(tag: string) {
    this.#tag = tag;
  }

  /** Removes every tagged line, this run's or an earlier one's; returns how many there were. */
  remove(): number {
    let removed = 0;
    rewrite((lines) =>
      lines.filter((line) => {
        const tagged = line.endsWith(this.#tag);
        if (tagged) removed++;
        return !tagged;
      }),
    );
    return removed;
  }

  /** Replaces any tagged lines with `entries`. */
  set(entries: readonly HostEntry[]): void {
    rewrite((lines) => [
      ...lines.filter((line) => !line.endsWith(this.#tag)),
      ...entries.map((entry) => `${entry.ip}\t${entry.name}\t${this.#tag}`),
    ]);
  }
}

function rewrite(transform: (lines: string[]) => string[]): void {
  const text = readFileSync(HOSTS_FILE, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const next = transform(lines);
  const out = next.length === 0 ? '' : `${next.join('\n')}\n`;
  if (out !== text) writeFileSync(HOSTS_FILE, out);
}

// What the figures were measured on: printed above the table and written into results.md.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

function firstLine(cmd: string, args: readonly string[]): string {
  const result = spawnSync(cmd, args, { encoding: 'utf8' });
  // nginx -v prints to stderr.
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0] ?? 'unknown';
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match?.[1]) return match[1].trim();
  } catch {
    // not Linux: fall through
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export function describeMachine(): Array<[string, string]> {
  return [
    ['CPU', `${cpuModel()}, ${os.availableParallelism()} cores`],
    ['RAM', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['kernel', `${os.type()} ${os.release()} ${os.arch()}`],
    ['Node', `${process.version} (OpenSSL ${process.versions.openssl})`],
    ['nginx', firstLine('/usr/sbin/nginx', ['-v']).replace(/^nginx version: /, '')],
    ['curl', firstLine('curl', ['--version']).split(' ').slice(0, 2).join(' ')],
    ['squid', firstLine('/usr/sbin/squid', ['-v']).replace(/^Squid Cache: Version /, '')],
  ];
}

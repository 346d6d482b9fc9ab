// The command line as an operator meets it: usage errors and bad config exit 2 with one clear
// message and no stack trace (a CA key others can read included); `serve` runs until SIGTERM and
// then exits 0.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateCa } from '../../src/tls/ca.ts';
import { tempDir } from '../helpers/tmp.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, exited, stdout: () => stdout };
}

describe('cli', () => {
  it.each([[['bogus']], [['serve', '--nope']], [[]]])('prints usage and exits 2 for %j', async (args) => {
    const { code, stderr } = await run(args).exited;
    expect(code).toBe(2);
    expect(stderr).toContain('usage: pullthrough serve');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('lists every configuration problem by path and exits 2, without a stack trace', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'listen: nope\nbogus: 1\nupstream: {verifyTls: maybe}\n');
    const { code, stderr } = await run(['serve', '--config', file], { VERIFY_SSL: 'sometimes' }).exited;
    expect(code).toBe(2);
    expect(stderr).toContain('listen: "nope" is not host:port');
    expect(stderr).toContain('unknown key "bogus"');
    expect(stderr).toContain('VERIFY_SSL: "sometimes" is not true or false');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('serves until SIGTERM, then exits 0', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\n');
    const proc = run(['serve', '--config', file]);
    while (!proc.stdout().includes('"msg":"listening"')) await once(proc.child.stdout, 'data');
    proc.child.kill('SIGTERM');
    const { code, stdout } = await proc.exited;
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"stopped"');
  });

  it.skipIf(process.platform === 'win32')(
    'refuses to serve with a CA key others can read: one line saying how to fix it, exit 2',
    async () => {
      const dir = await tempDir();
      await loadOrCreateCa({ dir: path.join(dir, 'ca') });
      const keyPath = path.join(dir, 'ca', 'ca.key');
      await chmod(keyPath, 0o644);
      const file = path.join(dir, 'config.yaml');
      await writeFile(file, 'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\n');
      const { code, stdout, stderr } = await run(['serve', '--config', file]).exited;
      expect(code).toBe(2);
      const whom = process.getuid?.() === 0 ? 'others' : 'group/others'; // a root-owned key may be group-read
      expect(stderr).toBe(
        `pullthrough: CA key ${keyPath} is readable by ${whom} (mode 0644): run chmod 600 ${keyPath}\n`,
      );
      expect(stdout).not.toContain('"msg":"listening"');
    },
  );
});

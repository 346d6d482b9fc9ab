// The command line as an operator meets it: usage errors and bad config exit 2 with one clear
// message and no stack trace (a CA key others can read included); `serve` runs until SIGTERM and
// then exits 0; `ca rotate` rotates the CA of the configured ca.dir and says what to do next.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
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
  it.each([[['bogus']], [['serve', '--nope']], [[]], [['ca']], [['ca', 'bogus']]])(
    'prints usage and exits 2 for %j',
    async (args) => {
      const { code, stderr } = await run(args).exited;
      expect(code).toBe(2);
      expect(stderr).toContain('usage: pullthrough serve');
      expect(stderr).not.toMatch(/\n\s+at /);
    },
  );

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

  it('ca rotate: rotates the CA in ca.dir, prints the fingerprints and the next steps, exits 0', async () => {
    const dir = await tempDir();
    const caDir = path.join(dir, 'ca');
    const old = await loadOrCreateCa({ dir: caDir });
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'ca: {dir: ./ca}\n');
    const { code, stdout, stderr } = await run(['ca', 'rotate', '--config', file]).exited;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect((await readdir(caDir)).sort()).toEqual([
      'ca.crt',
      'ca.key',
      'cross.crt',
      'previous.crt',
      'previous.key',
    ]);
    expect((await stat(path.join(caDir, 'ca.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(caDir, 'previous.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(caDir, 'previous.crt'), 'utf8')).toBe(old.certPem);
    const rotated = await loadOrCreateCa({ dir: caDir });
    expect(rotated.overlap.state).toBe('active');
    expect(stdout).toContain(`rotated the CA in ${caDir}`);
    expect(stdout).toContain(`new CA, sha256 ${rotated.fingerprintSha256}`);
    expect(stdout).toContain(`old CA, sha256 ${old.fingerprintSha256}`);
    expect(stdout).toContain('restart pullthrough');
    expect(stdout).toContain('delete previous.crt, previous.key and cross.crt');

    // Rotating again during the overlap would drop the CA clients trust today: refused.
    const again = await run(['ca', 'rotate', '--config', file]).exited;
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(
      /^pullthrough: a rotation is in progress \(.+previous\.crt is valid until .+\n$/,
    );
  });

  it('ca rotate without a CA: exit 2, one line, nothing created', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'ca: {dir: ./ca}\n');
    const { code, stdout, stderr } = await run(['ca', 'rotate', '--config', file]).exited;
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `pullthrough: no CA in ${path.join(dir, 'ca')} (ca.crt and ca.key are missing): check ca.dir, or start pullthrough serve once to create one\n`,
    );
    expect(await readdir(dir)).toEqual(['config.yaml']);
  });
});

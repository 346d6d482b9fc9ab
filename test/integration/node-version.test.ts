// The compiled entry on a Node too old to run pullthrough (the system Node 20 here): one line
// saying which Node is needed and how to get it, exit 1, no stack trace. And on this Node, the
// compiled entry still reaches the command line through its dynamic import.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, type Dist } from '../helpers/dist.ts';

const OLD_NODE = '/usr/bin/node';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function runNode(node: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await promisify(execFile)(node, args, { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function oldNodeMajor(): Promise<number> {
  if (!existsSync(OLD_NODE)) return Infinity;
  const { stdout } = await runNode(OLD_NODE, ['--version']);
  return Number(/^v(\d+)/.exec(stdout)?.[1] ?? Infinity);
}

const OLD_MAJOR = await oldNodeMajor();

describe('node version', () => {
  let dist: Dist | undefined;
  let main = '';
  beforeAll(async () => {
    dist = await buildDist();
    main = dist.main;
  }, 120_000);
  afterAll(() => dist?.remove());

  // Skipped where no older Node is installed at OLD_NODE to prove it with.
  it.skipIf(!(OLD_MAJOR < 24))('on an older Node: one line, which Node and how, exit 1', async () => {
    for (const args of [['--help'], ['serve']]) {
      const { code, stdout, stderr } = await runNode(OLD_NODE, [main, ...args]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toMatch(
        /^pullthrough: Node\.js 24 or later is needed, this is Node\.js v\d+\.\d+\.\d+: run it with `npm start` or `npx pullthrough` .+ or install Node\.js 24 \(https:\/\/nodejs\.org\/en\/download\)\n$/,
      );
    }
  });

  it('on this Node the compiled entry runs the command line', async () => {
    const { code, stdout, stderr } = await runNode(process.execPath, [main, '--version']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

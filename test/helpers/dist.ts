// pullthrough compiled as `npm run build` compiles it, into a temp dir of the test's own (never
// the checkout's dist/, which a running bench or a parallel test may be using): package.json
// beside it and node_modules linked, so that `node <dir>/dist/main.js` runs as an install does.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface Dist {
  /** `<temp>/dist/main.js`. */
  readonly main: string;
  remove(): Promise<void>;
}

/** Compiles src/ (once per test file: call it in beforeAll, and remove() in afterAll). */
export async function buildDist(): Promise<Dist> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pullthrough-dist-'));
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(
    process.execPath,
    [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist')],
    { cwd: ROOT },
  );
  await copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return {
    main: path.join(dir, 'dist', 'main.js'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

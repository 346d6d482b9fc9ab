import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingNodeFlags, NODE_FLAGS } from '../../src/node-flags.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('NODE_FLAGS', () => {
  it('are what the Dockerfile and npm start run the proxy with', () => {
    // The image's ENTRYPOINT is a script that picks the cache directory and then execs Node.
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entrypoint ?? '[]')).toEqual(['pullthrough-entrypoint']);
    expect(dockerfile).toMatch(
      /^COPY deploy\/container\/entrypoint\.sh \/usr\/local\/bin\/pullthrough-entrypoint$/m,
    );
    const script = readFileSync(path.join(ROOT, 'deploy', 'container', 'entrypoint.sh'), 'utf8');
    const execs = script.split('\n').filter((line) => line.startsWith('exec '));
    expect(execs).toEqual([`exec node ${NODE_FLAGS.join(' ')} /app/dist/main.js "$@"`]);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // `exec`: the shell npm runs the script in becomes node, so npm's SIGTERM reaches node itself.
    expect(pkg.scripts['start']).toMatch(
      new RegExp(`^exec node ${NODE_FLAGS.join(' ')} src/main\\.ts serve`),
    );
  });

  it('are missing only when neither the command line nor NODE_OPTIONS sets them, in any value', () => {
    expect(missingNodeFlags([], undefined)).toEqual(NODE_FLAGS);
    expect(missingNodeFlags(['--inspect'], '--enable-source-maps')).toEqual(NODE_FLAGS);
    expect(missingNodeFlags([...NODE_FLAGS], undefined)).toEqual([]);
    expect(missingNodeFlags(['--max-semi-space-size=8'], undefined)).toEqual([]);
    expect(missingNodeFlags([], '--trace-gc  --max_semi_space_size=2')).toEqual([]);
  });
});

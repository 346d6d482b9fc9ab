// The Node version check of main.ts: 24 or later, as package.json's "engines" says, and one line
// saying how to get there when older.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeVersionProblem, REQUIRED_NODE_MAJOR } from '../../src/node-version.ts';

describe('nodeVersionProblem', () => {
  it('requires the major of package.json engines.node', () => {
    const pkg = JSON.parse(readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as {
      engines: { node: string };
    };
    expect(pkg.engines.node).toBe(`>=${REQUIRED_NODE_MAJOR}`);
  });

  it.each(['v24.0.0', 'v24.21.0', 'v25.1.0', 'v100.0.0'])('accepts %s', (version) => {
    expect(nodeVersionProblem(version)).toBeUndefined();
  });

  it.each(['v20.20.2', 'v22.12.0', 'v23.11.1', 'v8.0.0', 'garbage'])('refuses %s in one line', (version) => {
    const problem = nodeVersionProblem(version);
    expect(problem).toContain(`Node.js 24 or later is needed, this is Node.js ${version}`);
    expect(problem).toContain('`npm start` or `npx pullthrough`');
    expect(problem).not.toContain('\n');
  });
});

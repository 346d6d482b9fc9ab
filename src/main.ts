#!/usr/bin/env node
// The `pullthrough` executable. It checks the Node version before anything else is loaded: on an
// older Node, undici and node:sqlite fail at import time with a stack trace, so the command line
// (cli/run.ts) is imported only once the check has passed. Keep this file's static imports to
// node-version.ts, which any Node can run.
import { nodeVersionProblem } from './node-version.ts';

const problem = nodeVersionProblem(process.version);
if (problem === undefined) {
  const { run } = await import('./cli/run.ts');
  await run(process.argv.slice(2));
} else {
  process.stderr.write(`pullthrough: ${problem}\n`);
  process.exitCode = 1;
}

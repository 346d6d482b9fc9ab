#!/usr/bin/env node
// The `pullthrough` executable: runs the command line of cli/program.ts and turns a failure into
// one line on stderr (`pullthrough: <message>`, never a stack trace) and its exit code.
import { buildProgram, exitCodeOf } from './cli/program.ts';

buildProgram()
  .parseAsync(process.argv.slice(2), { from: 'user' })
  .catch((error: unknown) => {
    const code = exitCodeOf(error);
    if (code === 0) return; // --help or --version, already printed
    process.stderr.write(`pullthrough: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(code);
  });

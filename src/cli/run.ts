// Runs the command line of program.ts and turns a failure into one line on stderr
// (`pullthrough: <message>`, never a stack trace) and its exit code. main.ts loads this file once
// it knows the Node version is recent enough.
import { buildProgram, exitCodeOf } from './program.ts';

export async function run(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
  } catch (error) {
    const code = exitCodeOf(error);
    if (code === 0) return; // --help or --version, already printed
    process.stderr.write(`pullthrough: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(code);
  }
}

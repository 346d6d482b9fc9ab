// The commander program: its name, version and commands, and how a failure becomes an exit code:
// 0 ok, 1 could not run, 2 bad usage or bad configuration (the CA directory included). Commander
// writes nothing to stderr: every failure is thrown to main.ts, which prints it as one line.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { CaError } from '../tls/errors.ts';
import { caRotateCommand } from './ca-rotate.ts';
import { cacheCommand } from './cache.ts';
import { caExportCommand, caShowCommand } from './ca-show.ts';
import { configCommand } from './config-check.ts';
import { UsageError } from './errors.ts';
import { serveCommand } from './serve.ts';
import { setupCommand } from './setup.ts';
import { warmCommand } from './warm.ts';
import { watchCommand } from './watch.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export function buildProgram(): Command {
  const program = new Command('pullthrough')
    .description('An HTTPS forward proxy that transparently caches container-registry traffic.')
    .version(version(), '-V, --version', 'print the version')
    .addCommand(serveCommand())
    .addCommand(
      new Command('ca')
        .description('manage the CA that signs intercepted hosts')
        .addCommand(caShowCommand())
        .addCommand(caExportCommand())
        .addCommand(caRotateCommand()),
    )
    .addCommand(cacheCommand())
    .addCommand(configCommand())
    .addCommand(setupCommand())
    .addCommand(warmCommand())
    .addCommand(watchCommand())
    .addHelpText('after', '\nExit codes: 0 ok, 1 could not run, 2 bad usage or bad configuration.');
  for (const command of withDescendants(program)) {
    command
      // writeErr gets only the error messages and the help shown for a missing command, both of
      // which become one UsageError line instead.
      .configureOutput({ writeErr: () => {} })
      .exitOverride((error) => {
        if (error.exitCode === EXIT.ok) throw error; // --help, --version: printed to stdout already
        throw usageError(error, command, program);
      });
  }
  return program;
}

/** The exit code for what running the program threw. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === EXIT.ok ? EXIT.ok : EXIT.usage;
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof CaError)
    return EXIT.usage;
  return EXIT.failed;
}

/** One line: what is wrong, every command there is, and where the help is. */
function usageError(error: CommanderError, command: Command, program: Command): UsageError {
  const words = pathOf(command);
  const what =
    error.code === 'commander.help' // a command that only groups others, given none of them
      ? `missing command${words.length > 1 ? ` after '${words.slice(1).join(' ')}'` : ''}`
      : error.message.replace(/^error: /, '').replaceAll('\n', ' '); // "\n(Did you mean serve?)"
  const commands = withDescendants(program)
    .filter((c) => c.commands.length === 0)
    .map((c) => pathOf(c).slice(1).join(' '));
  const synopsis = `${program.name()} ${commands.join(' | ')}`;
  return new UsageError(`${what} (usage: ${synopsis}; see ${words.join(' ')} --help)`, { cause: error });
}

function withDescendants(command: Command): Command[] {
  return [command, ...command.commands.flatMap((sub) => withDescendants(sub))];
}

function pathOf(command: Command): string[] {
  return command.parent ? [...pathOf(command.parent), command.name()] : [command.name()];
}

function version(): string {
  // ../../package.json from both src/cli/ and dist/cli/.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

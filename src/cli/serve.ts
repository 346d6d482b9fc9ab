// `pullthrough serve`: load the config, start the app, warn when Node lacks the recommended flags,
// and turn SIGTERM/SIGINT into a graceful stop (a second signal exits 1 at once). Failures are
// thrown to run.ts, which owns exit codes.
import { Command } from 'commander';
import { startApp, type App } from '../app.ts';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { rpardiniNotices } from '../config/rpardini.ts';
import { createLogger, logNotices, type Logger } from '../log.ts';
import { missingNodeFlags, NODE_FLAGS } from '../node-flags.ts';
import { prettyFormat, stdoutLog, type LogOutput } from './log-output.ts';
import { configOption, type ConfigOptions } from './options.ts';

/** How long exit waits for log lines still queued for stdout (a reader may never take them). */
const LOG_DRAIN_MS = 1_000;

/**
 * The same signal again within this time is the same event delivered twice, not an operator
 * insisting: Ctrl-C in a terminal reaches both `npm start` and node, and npm forwards it too.
 */
const REPEAT_MS = 1_000;

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the proxy (defaults: listen 0.0.0.0:3128, CA in ./ca, cache in ./cache)')
    .addOption(configOption())
    .action((options: ConfigOptions) => serve(options.config));
}

async function serve(file: string | undefined): Promise<void> {
  const config = await loadConfig({ file });
  const output = stdoutLog(config.log.format === 'pretty' ? { format: await prettyFormat() } : {});
  const log = createLogger(config.log.level, output);
  logNotices(log, rpardiniNotices(process.env));
  let app: App;
  try {
    app = await startApp(config, log);
  } catch (error) {
    throw listenError(error, config);
  }
  const missing = missingNodeFlags();
  if (missing.length > 0)
    log.warn(
      { missing, recommended: NODE_FLAGS },
      'Node started without the recommended flags: cold fills cost more CPU (README: Performance)',
    );
  stopOnSignals(app, log, output);
}

/** A port taken or privileged says which address, not just the errno; other errors pass as they are. */
function listenError(error: unknown, config: Config): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return error;
  return new Error(`cannot listen on ${config.listen.host}:${config.listen.port}: ${code}`, {
    cause: error,
  });
}

function stopOnSignals(app: App, log: Logger, output: LogOutput): void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const exit = (code: number) => void output.drain(LOG_DRAIN_MS).then(() => process.exit(code));
  const stop = (signal: NodeJS.Signals) => {
    const now = performance.now();
    if (first?.signal === signal && now - first.at < REPEAT_MS) return;
    if (first) {
      log.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    first = { signal, at: now };
    log.info({ signal }, 'shutting down');
    app.close().then(
      () => exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// `pullthrough serve`: load the config, start the app, warn when Node lacks the recommended flags,
// and turn SIGTERM/SIGINT into a graceful stop (a second signal exits 1 at once). Failures are
// thrown to main.ts, which owns exit codes.
import { Command } from 'commander';
import { startApp, type App } from '../app.ts';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createLogger, type Logger } from '../log.ts';
import { missingNodeFlags, NODE_FLAGS } from '../node-flags.ts';
import { configOption, type ConfigOptions } from './options.ts';

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the proxy (defaults: listen 0.0.0.0:3128, CA in ./ca, cache in ./cache)')
    .addOption(configOption())
    .action((options: ConfigOptions) => serve(options.config));
}

async function serve(file: string | undefined): Promise<void> {
  const config = await loadConfig({ file });
  const log = createLogger(config.log.level);
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
  stopOnSignals(app, log);
}

/** A port taken or privileged says which address, not just the errno; other errors pass as they are. */
function listenError(error: unknown, config: Config): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return error;
  return new Error(`cannot listen on ${config.listen.host}:${config.listen.port}: ${code}`, {
    cause: error,
  });
}

function stopOnSignals(app: App, log: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

#!/usr/bin/env node
// The command line: `pullthrough serve [--config FILE]`. Parses arguments, loads the config,
// starts the app and turns SIGTERM/SIGINT into a graceful stop. Exit codes: 0 ok, 1 could not
// run, 2 bad usage or bad configuration (one clear message, never a stack trace).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startApp } from './app.ts';
import { ConfigError } from './config/errors.ts';
import { loadConfig } from './config/load.ts';
import { createLogger } from './log.ts';
import { CaError } from './tls/errors.ts';

const USAGE = `usage: pullthrough serve [--config FILE]
       pullthrough --help | --version

  serve            run the proxy (defaults: listen 0.0.0.0:3128, CA in ./ca, cache in ./cache)
  --config FILE    read settings from FILE (YAML); environment variables override it
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function fail(message: string, code: number): never {
  process.stderr.write(`pullthrough: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    process.stderr.write(`pullthrough: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (positionals.length !== 1 || positionals[0] !== 'serve') {
    const what = positionals.length === 0 ? 'missing command' : `unknown command "${positionals.join(' ')}"`;
    process.stderr.write(`pullthrough: ${what}\n${USAGE}`);
    process.exit(2);
  }
  await serve(values.config);
}

async function serve(configFile: string | undefined): Promise<void> {
  let config;
  try {
    config = await loadConfig({ file: configFile });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 2);
    throw error;
  }
  const log = createLogger(config.log.level);
  let app;
  try {
    app = await startApp(config, log);
  } catch (error) {
    // The CA directory is configuration too: a bad one exits 2 with its one-line message.
    if (error instanceof CaError) fail(error.message, 2);
    const err = error as NodeJS.ErrnoException;
    const message =
      err.code === 'EADDRINUSE' || err.code === 'EACCES'
        ? `cannot listen on ${config.listen.host}:${config.listen.port}: ${err.code}`
        : err.message;
    fail(message, 1);
  }
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

main(process.argv.slice(2)).catch((error: unknown) => {
  fail(error instanceof Error ? error.message : String(error), 1);
});

#!/usr/bin/env node
// The command line: `pullthrough serve` and `pullthrough ca rotate`. Parses arguments, loads the
// config, starts the app and turns SIGTERM/SIGINT into a graceful stop, or rotates the CA. Exit
// codes: 0 ok, 1 could not run, 2 bad usage or bad configuration, the CA directory included (one
// clear message, never a stack trace).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startApp } from './app.ts';
import { ConfigError } from './config/errors.ts';
import { loadConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { createLogger } from './log.ts';
import { missingNodeFlags, NODE_FLAGS } from './node-flags.ts';
import { rotateCa } from './tls/rotate.ts';
import { CaError } from './tls/errors.ts';

const USAGE = `usage: pullthrough serve [--config FILE]
       pullthrough ca rotate [--config FILE]
       pullthrough --help | --version

  serve            run the proxy (defaults: listen 0.0.0.0:3128, CA in ./ca, cache in ./cache)
  ca rotate        replace the CA in ca.dir with a new one; the old one stays valid for clients
                   until you end the rotation (README: "Rotating the CA")
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
  const command = positionals.join(' ');
  if (command === 'serve') return serve(values.config);
  if (command === 'ca rotate') return caRotate(values.config);
  const what = positionals.length === 0 ? 'missing command' : `unknown command "${command}"`;
  process.stderr.write(`pullthrough: ${what}\n${USAGE}`);
  process.exit(2);
}

async function configOrFail(configFile: string | undefined): Promise<Config> {
  try {
    return await loadConfig({ file: configFile });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 2);
    throw error;
  }
}

async function serve(configFile: string | undefined): Promise<void> {
  const config = await configOrFail(configFile);
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
  const missing = missingNodeFlags();
  if (missing.length > 0)
    log.warn(
      { missing, recommended: NODE_FLAGS },
      'Node started without the recommended flags: cold fills cost more CPU (README: Performance)',
    );
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

async function caRotate(configFile: string | undefined): Promise<void> {
  const config = await configOrFail(configFile);
  let rotation;
  try {
    rotation = await rotateCa({ dir: config.ca.dir, passphrase: config.ca.passphrase ?? undefined });
  } catch (error) {
    if (error instanceof CaError) fail(error.message, 2);
    throw error;
  }
  const { current, previous, until } = rotation;
  const day = (date: Date) => date.toISOString().slice(0, 10);
  process.stdout.write(
    [
      `rotated the CA in ${config.ca.dir}`,
      `  ca.crt        new CA, sha256 ${current.fingerprintSha256}, valid until ${day(current.notAfter)}`,
      `  previous.crt  old CA, sha256 ${previous.fingerprintSha256}, valid until ${day(until)}`,
      '  cross.crt     the old CA certified by the new one: clients that trust either CA verify the proxy',
      'next steps:',
      '  1. restart pullthrough (it signs with the old CA and sends cross.crt until step 3)',
      '  2. distribute the new ca.crt to every client (after the restart, also at http://<proxy>:3128/ca.crt)',
      '  3. once every client trusts it, delete previous.crt, previous.key and cross.crt, and restart pullthrough',
      `clients that trust only the old CA stop working on ${day(until)}, when it expires, or at step 3`,
      '',
    ].join('\n'),
  );
}

main(process.argv.slice(2)).catch((error: unknown) => {
  fail(error instanceof Error ? error.message : String(error), 1);
});

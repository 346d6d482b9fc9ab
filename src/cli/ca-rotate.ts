// `pullthrough ca rotate`: rotate the CA of the configured ca.dir (tls/rotate.ts does the work) and
// tell the operator what to do next. Failures (a CaError, a ConfigError) are thrown to main.ts.
import { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { rotateCa } from '../tls/rotate.ts';
import { configOption, type ConfigOptions } from './options.ts';

export function caRotateCommand(): Command {
  return new Command('rotate')
    .description(
      'replace the CA in ca.dir with a new one; the old one stays valid for clients until you end ' +
        'the rotation (README: "Rotating the CA")',
    )
    .addOption(configOption())
    .action((options: ConfigOptions) => caRotate(options.config));
}

async function caRotate(file: string | undefined): Promise<void> {
  const config = await loadConfig({ file });
  const { current, previous, until } = await rotateCa({
    dir: config.ca.dir,
    passphrase: config.ca.passphrase ?? undefined,
  });
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

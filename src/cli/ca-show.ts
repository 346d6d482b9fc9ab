// `pullthrough ca show` and `pullthrough ca export`: what the CA of ca.dir is (subject,
// fingerprint, validity, rotation state), and its certificate for clients to trust, as PEM or
// DER, to stdout or a file. Neither creates a CA: a missing one is a CaError (exit 2).
import crypto from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { loadConfig } from '../config/load.ts';
import { loadCa } from '../tls/ca.ts';
import { loadOverlap, type Overlap } from '../tls/overlap.ts';
import { configOption, type ConfigOptions } from './options.ts';

export function caShowCommand(): Command {
  return new Command('show')
    .description('print the CA of ca.dir: subject, SHA-256 fingerprint, validity, rotation state')
    .addOption(configOption())
    .action((options: ConfigOptions) => show(options.config));
}

export function caExportCommand(): Command {
  return new Command('export')
    .description('write the CA certificate clients must trust (what the proxy serves at /ca.crt)')
    .addOption(configOption())
    .addOption(new Option('--format <format>', 'pem or der').choices(['pem', 'der']).default('pem'))
    .addOption(new Option('--out <file>', 'write it to this file instead of stdout'))
    .action((options: ExportOptions) => exportCa(options));
}

interface ExportOptions extends ConfigOptions {
  readonly format: 'pem' | 'der';
  readonly out?: string;
}

async function show(file: string | undefined): Promise<void> {
  const config = await loadConfig({ file });
  const passphrase = config.ca.passphrase ?? undefined;
  const now = new Date();
  const ca = await loadCa({ dir: config.ca.dir, passphrase, now });
  const overlap = await loadOverlap({ dir: config.ca.dir, current: ca, passphrase, now });
  const cert = new crypto.X509Certificate(ca.certPem);
  const days = Math.floor((ca.notAfter.getTime() - now.getTime()) / 86_400_000);
  process.stdout.write(
    [
      `CA in ${config.ca.dir}`,
      `  subject      ${cert.subject.replaceAll('\n', ', ')}`,
      `  sha256       ${ca.fingerprintSha256}`,
      `  valid        ${new Date(cert.validFrom).toISOString()} to ${ca.notAfter.toISOString()} (${days} days left)`,
      `  rotation     ${rotationText(overlap)}`,
      '',
    ].join('\n'),
  );
}

function rotationText(overlap: Overlap): string {
  switch (overlap.state) {
    case 'none':
      return 'none';
    case 'active':
      return (
        `in progress: signing with the previous CA (sha256 ${overlap.previous.fingerprintSha256}) ` +
        `and sending cross.crt until ${overlap.until.toISOString()}`
      );
    case 'ended':
      return `ended on ${overlap.until.toISOString()}: delete previous.crt, previous.key and cross.crt`;
    case 'ignored':
      return `rotation files ignored: ${overlap.reason}`;
  }
}

async function exportCa(options: ExportOptions): Promise<void> {
  const config = await loadConfig({ file: options.config });
  // Through loadCa: the same checks as serve (key mode, expiry, passphrase), so what is exported
  // is what the proxy signs with.
  const ca = await loadCa({ dir: config.ca.dir, passphrase: config.ca.passphrase ?? undefined });
  const data =
    options.format === 'der' ? new crypto.X509Certificate(ca.certPem).raw : Buffer.from(ca.certPem);
  if (options.out === undefined) process.stdout.write(data);
  else await writeFile(options.out, data, { mode: 0o644 });
}

// The throwaway "upstream" PKI: one CA and one server certificate carrying every upstream name as
// a SAN, made with the openssl CLI (P-256, positive random serial: Go rejects negative ones).
// The proxy trusts this CA for its upstream fetches; clients trust it only for tunnelled hosts.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './processes.ts';

export const UPSTREAM_CA_CN = 'pullthrough-e2e upstream CA';

export interface Pki {
  caCrt: string;
  caKey: string;
  serverCrt: string;
  serverKey: string;
  /** A directory holding only `ca.crt` (this CA): for `--cert-dir` style flags. */
  caCertDir: string;
}

export async function makeUpstreamPki(dir: string, names: readonly string[]): Promise<Pki> {
  mkdirSync(dir, { recursive: true });
  const cnf = join(dir, 'openssl.cnf');
  // A config of our own: Debian's default adds v3_ca extensions to every `req -x509`.
  writeFileSync(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      '[ca_ext]',
      'basicConstraints = critical, CA:TRUE, pathlen:0',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '[leaf_ext]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${names.map((name) => `DNS:${name}`).join(', ')}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  const pki: Pki = {
    caCrt: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCrt: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    caCertDir: join(dir, 'trust'),
  };
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  const common = [
    '-config',
    cnf,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-noenc',
    '-days',
    '7',
  ];
  const serial = (): string => {
    const bytes = randomBytes(16);
    bytes[0] = (bytes[0] ?? 0) & 0x7f; // top bit clear: a positive DER INTEGER
    return `0x${bytes.toString('hex')}`;
  };
  await runOk(
    'openssl',
    [
      'req',
      '-x509',
      ...common,
      '-extensions',
      'ca_ext',
      '-subj',
      `/CN=${UPSTREAM_CA_CN}`,
      '-set_serial',
      serial(),
      '-keyout',
      pki.caKey,
      '-out',
      pki.caCrt,
    ],
    { env },
  );
  await runOk(
    'openssl',
    [
      'req',
      '-x509',
      ...common,
      '-extensions',
      'leaf_ext',
      '-subj',
      `/CN=${names[0] ?? 'upstream'}`,
      '-set_serial',
      serial(),
      '-CA',
      pki.caCrt,
      '-CAkey',
      pki.caKey,
      '-keyout',
      pki.serverKey,
      '-out',
      pki.serverCrt,
    ],
    { env },
  );
  mkdirSync(pki.caCertDir);
  copyFileSync(pki.caCrt, join(pki.caCertDir, 'ca.crt'));
  return pki;
}

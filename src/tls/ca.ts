// The proxy's certificate authority: load `ca.crt` + `ca.key` from the CA directory (any common
// key encoding, optionally encrypted), or create an ECDSA P-256 CA and persist it atomically.
// Does not issue leaves (leaf.ts) or cache them (contexts.ts). The key is never logged or exported.
//
// On-disk layout of the CA directory (`ca.dir` in config):
//   ca.crt   the CA certificate, PEM, mode 0644: distribute it to every client
//   ca.key   its private key, PEM, mode 0600 (PKCS#8 when we create it; a user CA may bring
//            PKCS#8, SEC1 or PKCS#1, plain or encrypted with `ca.passphrase`/CA_KEY_PASSPHRASE)
//   .ca.{crt,key}.<pid>.<random>.tmp  temp files of an atomic write (temp + rename in the same
//            directory); any left by a crash are removed at the next start

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto, { type webcrypto } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CaError } from './errors.ts';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

/** What webcrypto signs leaves with: ECDSA + hash, or RSASSA-PKCS1-v1_5 + hash. */
export type SigningAlgorithm = webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;

export interface CertificateAuthority {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  /** Non-extractable webcrypto key, usage `sign` only. */
  readonly privateKey: webcrypto.CryptoKey;
  readonly signingAlgorithm: SigningAlgorithm;
  readonly notAfter: Date;
  /** Lowercase hex SHA-256 of the certificate's DER. */
  readonly fingerprintSha256: string;
  /** True if this call created the CA (and wrote it to disk). */
  readonly created: boolean;
}

export interface LoadOrCreateCaOptions {
  dir: string;
  passphrase?: string | undefined;
  /** Goes into the CN of a new CA so users can tell their CAs apart; default os.hostname(). */
  hostname?: string;
  now?: Date;
}

const HOUR_MS = 3_600_000;
/** RFC 5280 ub-common-name. */
const MAX_CN_LENGTH = 64;
const CA_VALIDITY_YEARS = 10;

export async function loadOrCreateCa(options: LoadOrCreateCaOptions): Promise<CertificateAuthority> {
  const now = options.now ?? new Date();
  const certPath = path.join(options.dir, CA_CERT_FILE);
  const keyPath = path.join(options.dir, CA_KEY_FILE);
  await sweepTempFiles(options.dir);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);

  if (certPem !== undefined && keyPem !== undefined) {
    return loadCa({ certPath, certPem, keyPath, keyPem, passphrase: options.passphrase, now });
  }
  if (certPem !== undefined) {
    throw new CaError(
      'CA_INCOMPLETE',
      `${certPath} exists but ${keyPath} does not: restore ${CA_KEY_FILE}, or remove ${CA_CERT_FILE} to create a new CA`,
    );
  }
  if (keyPem !== undefined) {
    throw new CaError(
      'CA_INCOMPLETE',
      `${keyPath} exists but ${certPath} does not: restore ${CA_CERT_FILE}, or remove ${CA_KEY_FILE} to create a new CA`,
    );
  }
  return createCa(options.dir, options.hostname ?? os.hostname(), now);
}

// ---------------------------------------------------------------------------------------------
// Loading

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTDIR: part of `ca.dir` is a file; creating the CA will then report the directory.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    const reason = code ?? String(error);
    throw new CaError(
      'CA_UNREADABLE',
      `cannot read ${file} (${reason}): make it a file readable by the user running pullthrough`,
      { cause: error },
    );
  }
}

interface LoadInput {
  certPath: string;
  certPem: string;
  keyPath: string;
  keyPem: string;
  passphrase: string | undefined;
  now: Date;
}

async function loadCa(input: LoadInput): Promise<CertificateAuthority> {
  const { certPath, keyPath, now } = input;
  const { nodeCert, cert } = parseCaCert(certPath, input.certPem);

  if (now.getTime() > nodeCertNotAfter(nodeCert).getTime()) {
    throw new CaError(
      'CA_EXPIRED',
      `CA certificate ${certPath} expired on ${nodeCertNotAfter(nodeCert).toISOString()}: install a renewed CA, or remove ${CA_CERT_FILE} and ${CA_KEY_FILE} to create a new one`,
    );
  }

  const keyObject = parsePrivateKey(keyPath, input.keyPem, input.passphrase);
  const algorithms = webcryptoAlgorithms(keyPath, keyObject);

  let matches: boolean;
  try {
    matches = nodeCert.checkPrivateKey(keyObject);
  } catch {
    matches = false; // e.g. an EC key against an RSA certificate
  }
  if (!matches) {
    throw new CaError(
      'CA_KEY_MISMATCH',
      `CA key ${keyPath} is not the private key of ${certPath}: put the matching pair in ${path.dirname(certPath)}, or remove both to create a new CA`,
    );
  }

  const privateKey = await importSigningKey(keyObject, algorithms);
  return freezeCa({ nodeCert, cert, privateKey, signingAlgorithm: algorithms.sign, created: false });
}

function parseCaCert(
  certPath: string,
  pem: string,
): { nodeCert: crypto.X509Certificate; cert: x509.X509Certificate } {
  // Take the first certificate if the file holds a bundle: that one must be the CA we sign with.
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (block === undefined) {
    throw new CaError(
      'CA_INVALID',
      `${certPath} holds no PEM certificate: put the CA certificate there, or remove ${CA_CERT_FILE} and ${CA_KEY_FILE} to create a new CA`,
    );
  }
  let nodeCert: crypto.X509Certificate;
  let cert: x509.X509Certificate;
  try {
    nodeCert = new crypto.X509Certificate(block);
    cert = new x509.X509Certificate(nodeCert.raw);
  } catch (error) {
    throw new CaError(
      'CA_INVALID',
      `cannot parse the certificate in ${certPath}: replace it with a valid PEM CA certificate`,
      { cause: error },
    );
  }
  if (!nodeCert.ca) {
    throw new CaError(
      'CA_INVALID',
      `${certPath} is not a CA certificate (basicConstraints CA:TRUE missing): use a CA certificate, not a server certificate`,
    );
  }
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  if (keyUsage !== null && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new CaError(
      'CA_INVALID',
      `${certPath} may not sign certificates (keyUsage lacks keyCertSign): use a CA certificate that allows it`,
    );
  }
  return { nodeCert, cert };
}

function nodeCertNotAfter(nodeCert: crypto.X509Certificate): Date {
  return new Date(nodeCert.validTo);
}

function parsePrivateKey(keyPath: string, pem: string, passphrase: string | undefined): crypto.KeyObject {
  // PKCS#8 `ENCRYPTED PRIVATE KEY`, or legacy OpenSSL PEM encryption (`Proc-Type: 4,ENCRYPTED`,
  // as `openssl genrsa -des3` wrote before OpenSSL 3 and rpardini/docker-registry-proxy keeps).
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(pem);
  const fixPassphrase = 'set ca.passphrase in the config file or the CA_KEY_PASSPHRASE environment variable';
  if (encrypted && passphrase === undefined) {
    throw new CaError('CA_KEY_ENCRYPTED', `CA key ${keyPath} is encrypted: ${fixPassphrase}`);
  }
  try {
    return crypto.createPrivateKey(
      passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase },
    );
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (encrypted) {
      throw new CaError(
        'CA_KEY_PASSPHRASE',
        `cannot decrypt CA key ${keyPath}: wrong passphrase, check ca.passphrase / CA_KEY_PASSPHRASE`,
        { cause: error },
      );
    }
    if (code === 'ERR_MISSING_PASSPHRASE' || code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED') {
      throw new CaError('CA_KEY_ENCRYPTED', `CA key ${keyPath} is encrypted: ${fixPassphrase}`, {
        cause: error,
      });
    }
    throw new CaError(
      'CA_INVALID',
      `cannot parse the private key in ${keyPath}: use a PEM key (PKCS#8, EC or RSA)`,
      { cause: error },
    );
  }
}

interface Algorithms {
  import: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  sign: SigningAlgorithm;
}

/** The webcrypto algorithms for a CA key: RSA signs with SHA-256, EC with the curve's own hash. */
function webcryptoAlgorithms(keyPath: string, key: crypto.KeyObject): Algorithms {
  if (key.asymmetricKeyType === 'rsa') {
    const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { import: rsa, sign: rsa };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const byCurve: Record<string, { namedCurve: string; hash: string }> = {
      prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
      secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
      secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
    };
    const match = curve === undefined ? undefined : byCurve[curve];
    if (match !== undefined) {
      return {
        import: { name: 'ECDSA', namedCurve: match.namedCurve },
        sign: { name: 'ECDSA', hash: match.hash },
      };
    }
  }
  const kind =
    key.asymmetricKeyType === 'ec'
      ? `ec ${key.asymmetricKeyDetails?.namedCurve ?? '?'}`
      : (key.asymmetricKeyType ?? '?');
  throw new CaError(
    'CA_KEY_UNSUPPORTED',
    `CA key ${keyPath} is ${kind}: use an RSA or EC P-256/P-384/P-521 CA key`,
  );
}

/** Import into webcrypto (which @peculiar/x509 signs with) as non-extractable, sign-only. */
function importSigningKey(key: crypto.KeyObject, algorithms: Algorithms): Promise<webcrypto.CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return crypto.webcrypto.subtle.importKey('pkcs8', der, algorithms.import, false, ['sign']);
}

function freezeCa(input: {
  nodeCert: crypto.X509Certificate;
  cert: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
  signingAlgorithm: SigningAlgorithm;
  created: boolean;
}): CertificateAuthority {
  return Object.freeze({
    cert: input.cert,
    certPem: input.nodeCert.toString(),
    privateKey: input.privateKey,
    signingAlgorithm: Object.freeze(input.signingAlgorithm),
    notAfter: nodeCertNotAfter(input.nodeCert),
    fingerprintSha256: crypto.createHash('sha256').update(input.nodeCert.raw).digest('hex'),
    created: input.created,
  });
}

// ---------------------------------------------------------------------------------------------
// Creating

async function createCa(dir: string, hostname: string, now: Date): Promise<CertificateAuthority> {
  const { privateKey: keyObject, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const algorithms = webcryptoAlgorithms('(new key)', keyObject);
  const spki = publicKey.export({ type: 'spki', format: 'der' });

  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const ski = await x509.SubjectKeyIdentifierExtension.create(spki);
  const name: x509.JsonName = [{ O: ['pullthrough'] }, { CN: [caCommonName(hostname, now)] }];

  const signingKey = await importSigningKey(keyObject, algorithms);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: positiveSerialHex(),
    subject: name,
    issuer: name,
    // An hour back: a client whose clock runs a little behind still accepts a CA made just now.
    notBefore: new Date(now.getTime() - HOUR_MS),
    notAfter,
    publicKey: spki,
    signingKey,
    signingAlgorithm: algorithms.sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      // Optional for a self-signed root (RFC 5280 §4.2.1.1) but what `openssl req -x509` writes.
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  const nodeCert = new crypto.X509Certificate(Buffer.from(cert.rawData));

  let keyWritten = false;
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    // Key first: a crash between the two renames leaves a lone ca.key, which the next start
    // reports (CA_INCOMPLETE) instead of a certificate nobody can sign with.
    await writeAtomic(dir, CA_KEY_FILE, keyObject.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    keyWritten = true;
    await writeAtomic(dir, CA_CERT_FILE, nodeCert.toString(), 0o644);
    await syncDir(dir);
  } catch (error) {
    // The key is ours from a moment ago and useless without its certificate: take it back so the
    // next start creates a CA again rather than stopping at half of one.
    if (keyWritten) await fs.rm(path.join(dir, CA_KEY_FILE), { force: true }).catch(() => undefined);
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new CaError(
      'CA_UNWRITABLE',
      `cannot write a new CA to ${dir} (${reason}): make the directory writable or point ca.dir elsewhere`,
      { cause: error },
    );
  }

  return freezeCa({
    nodeCert,
    cert,
    privateKey: signingKey,
    signingAlgorithm: algorithms.sign,
    created: true,
  });
}

/** `pullthrough CA <hostname> <ISO time>`, shortening the hostname so the whole fits 64 chars. */
function caCommonName(hostname: string, now: Date): string {
  const prefix = 'pullthrough CA ';
  const suffix = ` ${now.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
  return `${prefix}${hostname.slice(0, Math.max(0, MAX_CN_LENGTH - prefix.length - suffix.length))}${suffix}`.slice(
    0,
    MAX_CN_LENGTH,
  );
}

/** 16 random bytes with the top bit clear and a non-zero first byte: positive, exactly 16 bytes in DER. */
export function positiveSerialHex(): string {
  const bytes = crypto.randomBytes(16);
  const first = bytes[0]! & 0x7f;
  bytes[0] = first === 0 ? 0x01 : first;
  return bytes.toString('hex');
}

/** Write `dir/name` via a temp file created with `mode` (never wider, even for a moment) + rename. */
async function writeAtomic(dir: string, name: string, data: string, mode: number): Promise<void> {
  const temp = path.join(dir, `.${name}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', mode);
  try {
    try {
      await handle.chmod(mode); // the umask may have narrowed ca.crt; ca.key stays 0600 either way
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, path.join(dir, name));
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

/** Remove temp files a crash left mid-write (they may hold a private key). Best effort. */
async function sweepTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return; // no directory yet, or unreadable: reading the CA files will say so
  }
  const temp = names.filter((name) => /^\.ca\.(crt|key)\..+\.tmp$/.test(name));
  await Promise.all(temp.map((name) => fs.rm(path.join(dir, name), { force: true }).catch(() => undefined)));
}

/** Persist the renames themselves; best effort, as some filesystems cannot fsync a directory. */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // ignore: the files are written and renamed; only durability across a power cut is weaker
  } finally {
    await handle?.close();
  }
}

// The proxy's certificate authority: load `ca.crt` + `ca.key` from the CA directory (files.ts
// describes its layout), or create an ECDSA P-256 CA and persist it atomically; with it, the
// rotation in progress if any (overlap.ts). Does not issue leaves (leaf.ts), cache them
// (contexts.ts) or rotate (rotate.ts). The key is never logged or exported.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CaError } from './errors.ts';
import { loadOverlap, type Overlap } from './overlap.ts';
import { settleStagedRotation } from './staged.ts';
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  NEXT_CERT_FILE,
  checkKeyMode,
  readIfExists,
  sweepTempFiles,
  syncDir,
  writeAtomic,
} from './files.ts';
import {
  importSigningKey,
  parseCaCert,
  positiveSerialHex,
  toSigner,
  webcryptoAlgorithms,
  withKey,
  type Signer,
} from './signer.ts';

export type { SigningAlgorithm } from './signer.ts';

export interface CertificateAuthority extends Signer {
  /** True if this call created the CA (and wrote it to disk). */
  readonly created: boolean;
  /** A rotation in progress: while `active`, leaves are signed by the previous CA (leaf.ts). */
  readonly overlap: Overlap;
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
  await sweepTempFiles(options.dir);
  const loaded = await loadPair(options.dir, options.passphrase, now);
  const ca = loaded ?? (await createCa(options.dir, options.hostname ?? os.hostname(), now));
  const overlap = await loadOverlap({ dir: options.dir, current: ca, passphrase: options.passphrase, now });
  return Object.freeze({ ...ca, created: loaded === undefined, overlap });
}

/** The CA in ca.crt + ca.key, never created: CA_NOT_FOUND when both are missing. */
export async function loadCa(options: Omit<LoadOrCreateCaOptions, 'hostname'>): Promise<Signer> {
  await sweepTempFiles(options.dir);
  const ca = await loadPair(options.dir, options.passphrase, options.now ?? new Date());
  if (ca === undefined) {
    throw new CaError(
      'CA_NOT_FOUND',
      `no CA in ${options.dir} (${CA_CERT_FILE} and ${CA_KEY_FILE} are missing): check ca.dir, or start pullthrough serve once to create one`,
    );
  }
  return ca;
}

// ---------------------------------------------------------------------------------------------
// Loading

const REMOVE_TO_CREATE = `, or remove ${CA_CERT_FILE} and ${CA_KEY_FILE} to create a new CA`;

/** The CA in ca.crt + ca.key, or undefined when neither file exists. */
async function loadPair(dir: string, passphrase: string | undefined, now: Date): Promise<Signer | undefined> {
  // A `ca rotate` that crashed between its renames is finished (or undone) first.
  const staged = await settleStagedRotation(dir, passphrase);
  const certPath = path.join(dir, staged === undefined ? CA_CERT_FILE : NEXT_CERT_FILE);
  const keyPath = path.join(dir, CA_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([staged ?? readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem === undefined && keyPem === undefined) return undefined;
  if (keyPem === undefined) {
    throw new CaError(
      'CA_INCOMPLETE',
      `${certPath} exists but ${keyPath} does not: restore ${CA_KEY_FILE}, or remove ${CA_CERT_FILE} to create a new CA`,
    );
  }
  if (certPem === undefined) {
    throw new CaError(
      'CA_INCOMPLETE',
      `${keyPath} exists but ${certPath} does not: restore ${CA_CERT_FILE}, or remove ${CA_KEY_FILE} to create a new CA`,
    );
  }

  // First, before any other complaint: a key others can read is a leak to stop now.
  await checkKeyMode(keyPath);
  const caCert = parseCaCert(certPath, certPem, REMOVE_TO_CREATE);
  if (now.getTime() > caCert.notAfter.getTime()) {
    throw new CaError(
      'CA_EXPIRED',
      `CA certificate ${certPath} expired on ${caCert.notAfter.toISOString()}: install a renewed CA, or remove ${CA_CERT_FILE} and ${CA_KEY_FILE} to create a new one`,
    );
  }
  return withKey({
    caCert,
    certPath,
    keyPath,
    keyPem,
    passphrase,
    orElse: ', or remove both to create a new CA',
  });
}

// ---------------------------------------------------------------------------------------------
// Creating

export interface GenerateCaOptions {
  commonName: string;
  now: Date;
  /**
   * basicConstraints pathLenConstraint. 0 (no CA below this one) for the CA made on first start;
   * 1 for a CA made by `ca rotate`, which certifies the previous CA (cross.crt) for the overlap.
   */
  pathLength: number;
}

/** A fresh ECDSA P-256 CA, 10 years from now, not yet written anywhere. */
export async function generateCa(
  options: GenerateCaOptions,
): Promise<{ signer: Signer; key: crypto.KeyObject }> {
  const { now } = options;
  const { privateKey: keyObject, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const algorithms = webcryptoAlgorithms('(new key)', keyObject);
  const spki = publicKey.export({ type: 'spki', format: 'der' });

  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const ski = await x509.SubjectKeyIdentifierExtension.create(spki);
  const name: x509.JsonName = [{ O: ['pullthrough'] }, { CN: [options.commonName] }];

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
      new x509.BasicConstraintsExtension(true, options.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      // Optional for a self-signed root (RFC 5280 §4.2.1.1) but what `openssl req -x509` writes.
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  const nodeCert = new crypto.X509Certificate(Buffer.from(cert.rawData));
  const signer = toSigner({ nodeCert, cert, privateKey: signingKey, signingAlgorithm: algorithms.sign });
  return { signer, key: keyObject };
}

async function createCa(dir: string, hostname: string, now: Date): Promise<Signer> {
  const { signer, key } = await generateCa({ commonName: caCommonName(hostname, now), now, pathLength: 0 });
  let keyWritten = false;
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    // Key first: a crash between the two renames leaves a lone ca.key, which the next start
    // reports (CA_INCOMPLETE) instead of a certificate nobody can sign with.
    await writeAtomic(dir, CA_KEY_FILE, key.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    keyWritten = true;
    await writeAtomic(dir, CA_CERT_FILE, signer.certPem, 0o644);
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

  return signer;
}

/** `pullthrough CA <hostname> <ISO time>`, shortening the hostname so the whole fits 64 chars. */
export function caCommonName(hostname: string, now: Date): string {
  const prefix = 'pullthrough CA ';
  const suffix = ` ${now.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
  return `${prefix}${hostname.slice(0, Math.max(0, MAX_CN_LENGTH - prefix.length - suffix.length))}${suffix}`.slice(
    0,
    MAX_CN_LENGTH,
  );
}

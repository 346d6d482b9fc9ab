// `pullthrough ca rotate`: replace the CA in ca.crt/ca.key with a new one and keep the old one as
// previous.crt/previous.key, with cross.crt certifying the old CA under the new one, so that the
// proxy (overlap.ts) can serve leaves that clients trusting either CA accept. Rotating again
// while that overlap lasts is refused: it would drop the CA that clients trust today.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { caCommonName, generateCa, loadCa } from './ca.ts';
import { CaError } from './errors.ts';
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  CROSS_CERT_FILE,
  NEXT_CERT_FILE,
  NEXT_KEY_FILE,
  PREVIOUS_CERT_FILE,
  PREVIOUS_KEY_FILE,
  readIfExists,
  syncDir,
  writeAtomic,
} from './files.ts';
import { keyId, parseCaCert, positiveSerialHex, type Signer } from './signer.ts';

export interface RotateCaOptions {
  dir: string;
  /** Of the current ca.key; the new ca.key is encrypted with it too (PKCS#8, AES-256-CBC). */
  passphrase?: string | undefined;
  /** Goes into the CN of the new CA; default os.hostname(). */
  hostname?: string;
  now?: Date;
  /** Tests: called before each write (rotationSteps); a throw stops the rotation there, as a crash would. */
  beforeStep?: (name: string) => void | Promise<void>;
}

export interface Rotation {
  /** The new CA, now in ca.crt. */
  readonly current: Signer;
  /** The CA it replaces, now in previous.crt. */
  readonly previous: Signer;
  /** The end of the overlap: when the previous CA, and so cross.crt, expire. */
  readonly until: Date;
}

const HOUR_MS = 3_600_000;

export async function rotateCa(options: RotateCaOptions): Promise<Rotation> {
  const { dir } = options;
  const now = options.now ?? new Date();
  const previous = await loadCa({ dir, passphrase: options.passphrase, now });
  await refuseDuringOverlap(dir, previous, now);
  // The files exactly as they are: previous.key keeps its encoding and encryption.
  const [previousCertPem, previousKeyPem] = await Promise.all([
    fs.readFile(path.join(dir, CA_CERT_FILE), 'utf8'),
    fs.readFile(path.join(dir, CA_KEY_FILE), 'utf8'),
  ]);

  // A new subject, so that no client mistakes one CA for the other when it looks for an issuer;
  // the CN carries the time, and only a rotation within the second of the last one needs a bump.
  const hostname = options.hostname ?? os.hostname();
  const previousNames = new Set(previous.cert.subjectName.getField('CN'));
  let nameTime = now;
  while (previousNames.has(caCommonName(hostname, nameTime))) nameTime = new Date(nameTime.getTime() + 1000);
  const { signer: current, key } = await generateCa({
    commonName: caCommonName(hostname, nameTime),
    now,
    pathLength: 1,
  });

  const until = previous.notAfter;
  const cross = await x509.X509CertificateGenerator.create({
    serialNumber: positiveSerialHex(),
    // The previous CA's subject, key and key id, exactly: leaves it signs name this subject as
    // their issuer (compared byte for byte by Go) and carry this key id as their AKI.
    subject: new x509.Name(previous.cert.subjectName.toArrayBuffer()),
    issuer: new x509.Name(current.cert.subjectName.toArrayBuffer()),
    notBefore: new Date(now.getTime() - HOUR_MS),
    notAfter: until, // a link to a CA is no use once that CA has expired
    publicKey: previous.cert.publicKey.rawData,
    signingKey: current.privateKey,
    signingAlgorithm: current.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true), // only leaves below it
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectKeyIdentifierExtension(await keyId(previous.cert)),
      new x509.AuthorityKeyIdentifierExtension(await keyId(current.cert)),
    ],
  });

  const keyPem = (
    options.passphrase === undefined
      ? key.export({ type: 'pkcs8', format: 'pem' })
      : key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: options.passphrase })
  ) as string;
  const steps = rotationSteps(dir, {
    previousKeyPem,
    previousCertPem,
    crossPem: `${cross.toString('pem')}\n`,
    keyPem,
    certPem: current.certPem,
  });
  try {
    for (const [name, step] of steps) {
      await options.beforeStep?.(name);
      await step();
    }
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new CaError(
      'CA_UNWRITABLE',
      `cannot write the new CA to ${dir} (${reason}): make the directory writable and run pullthrough ca rotate again`,
      { cause: error },
    );
  }
  return { current, previous, until };
}

/**
 * The writes of a rotation, in an order where a crash after any prefix of them leaves a CA that
 * loads. The old CA is copied first (previous.*, with cross.crt): until ca.crt changes, overlap.ts
 * ignores those, and this command runs again. The new pair is then staged whole and synced beside
 * ca.* (next.key, next.crt) and renamed over ca.key, then ca.crt. ca.* are two files, so there is
 * a moment with the new key beside the old certificate: staged.ts finishes that rename at the
 * next load, and drops a staging that no rename had used yet.
 */
function rotationSteps(
  dir: string,
  pems: {
    previousKeyPem: string;
    previousCertPem: string;
    crossPem: string;
    keyPem: string;
    certPem: string;
  },
): Array<readonly [string, () => Promise<void>]> {
  const at = (name: string) => path.join(dir, name);
  return [
    [PREVIOUS_KEY_FILE, () => writeAtomic(dir, PREVIOUS_KEY_FILE, pems.previousKeyPem, 0o600)],
    [PREVIOUS_CERT_FILE, () => writeAtomic(dir, PREVIOUS_CERT_FILE, pems.previousCertPem, 0o644)],
    [CROSS_CERT_FILE, () => writeAtomic(dir, CROSS_CERT_FILE, pems.crossPem, 0o644)],
    [NEXT_KEY_FILE, () => writeAtomic(dir, NEXT_KEY_FILE, pems.keyPem, 0o600)],
    [NEXT_CERT_FILE, () => writeAtomic(dir, NEXT_CERT_FILE, pems.certPem, 0o644)],
    ['sync staged', () => syncDir(dir)],
    [CA_KEY_FILE, () => fs.rename(at(NEXT_KEY_FILE), at(CA_KEY_FILE))],
    [CA_CERT_FILE, () => fs.rename(at(NEXT_CERT_FILE), at(CA_CERT_FILE))],
    ['sync renames', () => syncDir(dir)],
  ];
}

/**
 * A previous.crt that is still valid is a rotation some clients may still depend on: replacing it
 * would leave them with no chain to a CA they trust. One that has expired, or that is ca.crt
 * itself (a rotation that stopped before replacing ca.crt), can go.
 */
async function refuseDuringOverlap(dir: string, current: Signer, now: Date): Promise<void> {
  const previousPath = path.join(dir, PREVIOUS_CERT_FILE);
  const pem = await readIfExists(previousPath);
  if (pem === undefined) return;
  const ending = `, or delete ${PREVIOUS_CERT_FILE}, ${PREVIOUS_KEY_FILE} and ${CROSS_CERT_FILE}`;
  const previous = parseCaCert(previousPath, pem, ending);
  const sameAsCurrent = previous.cert.equal(current.cert);
  if (sameAsCurrent || previous.notAfter.getTime() <= now.getTime()) return;
  throw new CaError(
    'CA_ROTATION_IN_PROGRESS',
    `a rotation is in progress (${previousPath} is valid until ${previous.notAfter.toISOString()}): once every client trusts ${path.join(dir, CA_CERT_FILE)}, delete ${PREVIOUS_CERT_FILE}, ${PREVIOUS_KEY_FILE} and ${CROSS_CERT_FILE}, restart pullthrough, then rotate again`,
  );
}

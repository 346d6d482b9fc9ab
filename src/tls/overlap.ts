// A CA rotation in progress, as `pullthrough ca rotate` (rotate.ts) leaves it in the CA directory:
// while previous.crt is valid, leaves are signed by the previous CA and sent with cross.crt (the
// previous CA certified by the new one), so that a client trusting either CA verifies them and
// no client has to change on the day of the rotation. Loads and checks; writes nothing.
//
// Why not the other way round (leaves from the new CA, with the new CA certified by the old one):
// every CA pullthrough creates on first start has pathLenConstraint 0, and both OpenSSL and Go's
// crypto/x509 (which applies MaxPathLen to roots too) refuse a chain with an intermediate below
// it. This way, a client that trusts only the old CA gets a leaf that CA signed directly, and the
// one intermediate (cross.crt) sits below the new CA, which rotate.ts creates with pathlen 1.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto from 'node:crypto';
import path from 'node:path';
import { CaError } from './errors.ts';
import {
  CROSS_CERT_FILE,
  PREVIOUS_CERT_FILE,
  PREVIOUS_KEY_FILE,
  checkKeyMode,
  readIfExists,
} from './files.ts';
import { parseCaCert, withKey, type Signer } from './signer.ts';

export type Overlap =
  /** No rotation files: leaves are signed by ca.crt. */
  | { readonly state: 'none' }
  /** Until `until`, leaves are signed by `previous` and sent followed by `crossPem`. */
  | { readonly state: 'active'; readonly previous: Signer; readonly crossPem: string; readonly until: Date }
  /** The previous CA (or cross.crt) expired on `until`: leaves are signed by ca.crt. */
  | { readonly state: 'ended'; readonly until: Date }
  /** The rotation files cannot be used (`reason`, one line): leaves are signed by ca.crt. */
  | { readonly state: 'ignored'; readonly reason: string };

const ROTATION_FILES = `${PREVIOUS_CERT_FILE}, ${PREVIOUS_KEY_FILE} and ${CROSS_CERT_FILE}`;
const END_ROTATION = `, or delete ${ROTATION_FILES} to end the rotation`;
const END_THE_ROTATION = `delete ${ROTATION_FILES} to end the rotation`;

export interface LoadOverlapInput {
  dir: string;
  /** The CA in ca.crt, already loaded. */
  current: Signer;
  passphrase: string | undefined;
  now: Date;
}

/**
 * The rotation state of the CA directory. Files a crash of `ca rotate` can leave (some missing,
 * or ca.crt not yet replaced) are `ignored` with the reason; files that are present but broken
 * (unparseable, a key others can read, a wrong passphrase) are a CaError, like ca.crt/ca.key.
 */
export async function loadOverlap(input: LoadOverlapInput): Promise<Overlap> {
  const { dir, current, now } = input;
  const certPath = path.join(dir, PREVIOUS_CERT_FILE);
  const keyPath = path.join(dir, PREVIOUS_KEY_FILE);
  const crossPath = path.join(dir, CROSS_CERT_FILE);
  const [certPem, keyPem, crossPem] = await Promise.all([
    readIfExists(certPath),
    readIfExists(keyPath),
    readIfExists(crossPath),
  ]);
  if (certPem === undefined && keyPem === undefined && crossPem === undefined) return { state: 'none' };
  // Whatever state the rotation is in, previous.key is a CA key that clients may still trust.
  if (keyPem !== undefined) await checkKeyMode(keyPath);

  const currentCert = new crypto.X509Certificate(current.certPem);
  const previousCert = certPem === undefined ? undefined : parseCaCert(certPath, certPem, END_ROTATION);
  if (previousCert?.nodeCert.fingerprint256 === currentCert.fingerprint256) {
    return ignored(
      `${certPath} is the certificate in ca.crt (an interrupted pullthrough ca rotate)`,
      `run pullthrough ca rotate again${END_ROTATION}`,
    );
  }
  const missing = [
    [PREVIOUS_CERT_FILE, certPem],
    [PREVIOUS_KEY_FILE, keyPem],
    [CROSS_CERT_FILE, crossPem],
  ].flatMap(([name, pem]) => (pem === undefined ? [name] : []));
  if (previousCert === undefined || keyPem === undefined || crossPem === undefined) {
    return ignored(`rotation files incomplete (${missing.join(', ')} missing in ${dir})`, END_THE_ROTATION);
  }

  let cross: crypto.X509Certificate;
  try {
    cross = new crypto.X509Certificate(crossPem);
  } catch (error) {
    throw new CaError(
      'CA_INVALID',
      `cannot parse the certificate in ${crossPath}: run pullthrough ca rotate again${END_ROTATION}`,
      { cause: error },
    );
  }
  const until = new Date(Math.min(previousCert.notAfter.getTime(), new Date(cross.validTo).getTime()));
  if (now.getTime() >= until.getTime()) return { state: 'ended', until };

  // cross.crt must be exactly the link from the previous CA to the current one: the previous
  // CA's subject and key, issued and signed by ca.crt. Anything else would break the chain.
  const linked =
    cross.ca &&
    sameSubject(cross, previousCert.nodeCert) &&
    cross.publicKey.equals(previousCert.nodeCert.publicKey) &&
    cross.checkIssued(currentCert) &&
    cross.verify(currentCert.publicKey);
  if (!linked) {
    return ignored(`${crossPath} does not link ${certPath} to ca.crt`, END_THE_ROTATION);
  }

  const previous = await withKey({
    caCert: previousCert,
    certPath,
    keyPath,
    keyPem,
    passphrase: input.passphrase,
    orElse: END_ROTATION,
  });
  return Object.freeze({ state: 'active', previous, crossPem: cross.toString(), until });
}

function ignored(problem: string, fix: string): Overlap {
  return { state: 'ignored', reason: `${problem}: signing leaves with ca.crt alone; ${fix}` };
}

/** Byte for byte, as Go matches a certificate's issuer to its parent's subject. */
function sameSubject(a: crypto.X509Certificate, b: crypto.X509Certificate): boolean {
  const subject = (cert: crypto.X509Certificate) =>
    Buffer.from(new x509.X509Certificate(cert.raw).subjectName.toArrayBuffer());
  return subject(a).equals(subject(b));
}

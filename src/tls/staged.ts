// The new CA pair that `ca rotate` stages as next.key + next.crt before renaming them over
// ca.key and then ca.crt. A crash can stop it anywhere; what the directory holds says how far it
// got, and loading settles it: next.key still there means no rename happened (ca.* is the old,
// whole pair, and the staged files are dropped); next.crt alone means ca.key is already the new
// key and next.crt its certificate, so that rename is finished here (in a directory that cannot
// be written, next.crt is used in its place). Either way a crash never leaves an unusable CA.

import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CA_CERT_FILE, CA_KEY_FILE, NEXT_CERT_FILE, NEXT_KEY_FILE, readIfExists, syncDir } from './files.ts';

/**
 * Settles a rotation a crash interrupted. Returns the certificate to use instead of ca.crt when
 * ca.crt is the old one and cannot be replaced; undefined when ca.crt is right as it is now.
 */
export async function settleStagedRotation(
  dir: string,
  passphrase: string | undefined,
): Promise<string | undefined> {
  const nextKey = path.join(dir, NEXT_KEY_FILE);
  const nextCert = path.join(dir, NEXT_CERT_FILE);
  const [stagedKey, stagedCert] = await Promise.all([readIfExists(nextKey), readIfExists(nextCert)]);
  if (stagedKey !== undefined) {
    // The renames never started: a half-staged pair (a private key among them) is of no use.
    await Promise.all([nextKey, nextCert].map((file) => fs.rm(file, { force: true }).catch(() => undefined)));
    return undefined;
  }
  if (stagedCert === undefined) return undefined;
  const keyPem = await readIfExists(path.join(dir, CA_KEY_FILE));
  // Only the certificate of the key now in ca.key may replace ca.crt; anything else is left alone
  // for loading to report.
  if (keyPem === undefined || !certifiesKey(stagedCert, keyPem, passphrase)) return undefined;
  try {
    await fs.rename(nextCert, path.join(dir, CA_CERT_FILE));
    await syncDir(dir);
    return undefined;
  } catch {
    return stagedCert;
  }
}

function certifiesKey(certPem: string, keyPem: string, passphrase: string | undefined): boolean {
  try {
    const key = crypto.createPrivateKey(
      passphrase === undefined ? { key: keyPem, format: 'pem' } : { key: keyPem, format: 'pem', passphrase },
    );
    return new crypto.X509Certificate(certPem).checkPrivateKey(key);
  } catch {
    return false;
  }
}

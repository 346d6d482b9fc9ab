// A CA certificate with its private key, parsed from PEM: RSA or EC, any common key encoding,
// plain or encrypted, checked to belong together and imported for webcrypto signing. Reads no
// files (ca.ts hands it the text and the paths to name in messages); the key is never exported.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto, { type webcrypto } from 'node:crypto';
import path from 'node:path';
import { CaError } from './errors.ts';

/** What webcrypto signs with: ECDSA + hash, or RSASSA-PKCS1-v1_5 + hash. */
export type SigningAlgorithm = webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;

export interface Signer {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  /** Non-extractable webcrypto key, usage `sign` only. */
  readonly privateKey: webcrypto.CryptoKey;
  readonly signingAlgorithm: SigningAlgorithm;
  readonly notAfter: Date;
  /** Lowercase hex SHA-256 of the certificate's DER. */
  readonly fingerprintSha256: string;
}

/** A parsed CA certificate, before its key is looked at. */
export interface CaCert {
  readonly nodeCert: crypto.X509Certificate;
  readonly cert: x509.X509Certificate;
  readonly notAfter: Date;
}

/**
 * The first certificate in `pem`, which must be a CA allowed to sign certificates. `orElse` ends
 * the message when there is no certificate at all, e.g. ", or remove ca.crt and ca.key to ...".
 */
export function parseCaCert(certPath: string, pem: string, orElse: string): CaCert {
  // Take the first certificate if the file holds a bundle: that one must be the CA we sign with.
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (block === undefined) {
    throw new CaError(
      'CA_INVALID',
      `${certPath} holds no PEM certificate: put the CA certificate there${orElse}`,
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
  return { nodeCert, cert, notAfter: new Date(nodeCert.validTo) };
}

export interface WithKeyInput {
  caCert: CaCert;
  certPath: string;
  keyPath: string;
  keyPem: string;
  passphrase: string | undefined;
  /** Ends the message when the key is not the certificate's, e.g. ", or remove both to ...". */
  orElse: string;
}

/** Parse the key, check that it is the certificate's, and import it for signing. */
export async function withKey(input: WithKeyInput): Promise<Signer> {
  const { caCert, certPath, keyPath } = input;
  const keyObject = parsePrivateKey(keyPath, input.keyPem, input.passphrase);
  const algorithms = webcryptoAlgorithms(keyPath, keyObject);

  let matches: boolean;
  try {
    matches = caCert.nodeCert.checkPrivateKey(keyObject);
  } catch {
    matches = false; // e.g. an EC key against an RSA certificate
  }
  if (!matches) {
    throw new CaError(
      'CA_KEY_MISMATCH',
      `CA key ${keyPath} is not the private key of ${certPath}: put the matching pair in ${path.dirname(certPath)}${input.orElse}`,
    );
  }
  const privateKey = await importSigningKey(keyObject, algorithms);
  return toSigner({ ...caCert, privateKey, signingAlgorithm: algorithms.sign });
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

export interface Algorithms {
  import: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  sign: SigningAlgorithm;
}

/** The webcrypto algorithms for a CA key: RSA signs with SHA-256, EC with the curve's own hash. */
export function webcryptoAlgorithms(keyPath: string, key: crypto.KeyObject): Algorithms {
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
export function importSigningKey(
  key: crypto.KeyObject,
  algorithms: Algorithms,
): Promise<webcrypto.CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return crypto.webcrypto.subtle.importKey('pkcs8', der, algorithms.import, false, ['sign']);
}

export function toSigner(input: {
  nodeCert: crypto.X509Certificate;
  cert: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
  signingAlgorithm: SigningAlgorithm;
}): Signer {
  return Object.freeze({
    cert: input.cert,
    certPem: input.nodeCert.toString(),
    privateKey: input.privateKey,
    signingAlgorithm: Object.freeze(input.signingAlgorithm),
    notAfter: new Date(input.nodeCert.validTo),
    fingerprintSha256: crypto.createHash('sha256').update(input.nodeCert.raw).digest('hex'),
  });
}

const keyIds = new WeakMap<x509.X509Certificate, Promise<string>>();

/**
 * The key identifier that certificates issued by `cert` name in their AKI: its subject key
 * identifier, or (for a user CA without one) the RFC 5280 §4.2.1.2 SHA-1 hash of its key.
 */
export function keyId(cert: x509.X509Certificate): Promise<string> {
  let id = keyIds.get(cert);
  if (id === undefined) {
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    id =
      ski !== undefined
        ? Promise.resolve(ski)
        : x509.SubjectKeyIdentifierExtension.create(cert.publicKey).then((ext) => ext.keyId);
    keyIds.set(cert, id);
  }
  return id;
}

/** 16 random bytes with the top bit clear and a non-zero first byte: positive, exactly 16 bytes in DER. */
export function positiveSerialHex(): string {
  const bytes = crypto.randomBytes(16);
  const first = bytes[0]! & 0x7f;
  bytes[0] = first === 0 ? 0x01 : first;
  return bytes.toString('hex');
}

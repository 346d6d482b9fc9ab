// Leaf (server) certificates for intercepted hosts, signed by the proxy's CA (by the previous CA
// while a rotation overlaps: overlap.ts): a fresh ECDSA P-256 key per host and a profile that Go,
// OpenSSL (-x509_strict), Python >= 3.13 and Apple accept.
// Nothing here touches disk or caches anything: contexts.ts caches the result per host.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import crypto from 'node:crypto';
import net from 'node:net';
import { domainToASCII } from 'node:url';
import type { CertificateAuthority } from './ca.ts';
import { CaError } from './errors.ts';
import { keyId, positiveSerialHex, type Signer } from './signer.ts';

export interface Leaf {
  certPem: string;
  /** PEM certificates to send after the leaf: cross.crt while a rotation overlaps, else ''. */
  chainPem: string;
  /** PKCS#8 PEM of the leaf's own key. */
  keyPem: string;
  notAfter: Date;
}

export interface NormalizedHost {
  /** Lowercase ASCII DNS name without a trailing dot, or a canonical IP address (no brackets). */
  name: string;
  kind: 'dns' | 'ip';
}

const HOUR_MS = 3_600_000;

// Leaves live 30 days. Short because: the CA/Browser Forum is cutting public TLS certificates to
// 200 days in 2026 and 47 days by 2029 (ballot SC-081); Apple rejects TLS certificates valid for
// more than 825 days, even from a user-installed CA (support.apple.com/HT210176); and nothing is
// persisted, so a new leaf costs only a few milliseconds of signing when a process restarts or a
// cached one comes up for renewal (contexts.ts renews with a third of the lifetime left).
export const LEAF_LIFETIME_MS = 30 * 24 * HOUR_MS;

// RFC 5280 ub-common-name: longer hosts get an empty subject and a critical SAN (§4.2.1.6).
const MAX_CN_LENGTH = 64;

/**
 * The name a leaf certifies for `host`: IP literals (with or without [brackets]) become a canonical
 * IP, anything else a lowercase ASCII (punycode) DNS name. Throws TypeError for what cannot be one.
 */
export function normalizeHost(host: string): NormalizedHost {
  let value = host.trim();
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
  if (net.isIPv4(value)) return { name: value, kind: 'ip' };
  const withoutZone = value.replace(/%.*$/, ''); // fe80::1%eth0: the zone is not part of the address
  if (net.isIPv6(withoutZone)) {
    // The URL parser gives the RFC 5952 form (`::ffff:1.2.3.4` becomes `::ffff:102:304`), which
    // @peculiar/x509 encodes correctly; it mangles the dotted-quad tail otherwise.
    return { name: new URL(`http://[${withoutZone}]/`).hostname.slice(1, -1), kind: 'ip' };
  }
  const invalid = () =>
    new TypeError(
      `cannot issue a certificate for host ${JSON.stringify(host)}: not a DNS name or IP address`,
    );
  // domainToASCII parses like a URL host (it cuts at '/', decodes '%41', reads '127.1' as an IPv4
  // address), so refuse URL syntax first and odd IPv4 spellings after.
  if (/[\s/\\?#%@:[\]]/.test(value)) throw invalid();
  const ascii = domainToASCII(value.replace(/\.$/, ''));
  if (
    ascii.length > 253 ||
    net.isIP(ascii) !== 0 ||
    !/^(?!-)[a-z0-9_-]{1,63}(\.(?!-)[a-z0-9_-]{1,63})*$/.test(ascii)
  ) {
    throw invalid();
  }
  return { name: ascii, kind: 'dns' };
}

export async function issueLeaf(
  ca: CertificateAuthority,
  host: string,
  now: Date = new Date(),
): Promise<Leaf> {
  const { name, kind } = normalizeHost(host);
  const { signer, chainPem, until } = signerAt(ca, now);
  const notAfter = new Date(Math.min(now.getTime() + LEAF_LIFETIME_MS, until.getTime()));
  if (notAfter.getTime() <= now.getTime()) {
    throw new CaError(
      'CA_EXPIRED',
      `the CA expired on ${ca.notAfter.toISOString()}: install a renewed CA, or remove ca.crt and ca.key to create a new one`,
    );
  }

  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const shortEnoughForCn = name.length <= MAX_CN_LENGTH;
  const { issuer, extensions } = await profileOf(signer);

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: positiveSerialHex(), // Go >= 1.23 rejects negative serials
    // Go ignores the CN and matches the SAN only; the CN is for people reading the certificate.
    ...(shortEnoughForCn ? { subject: [{ CN: [name] }] } : {}),
    issuer,
    notBefore: new Date(now.getTime() - HOUR_MS), // clients whose clocks lag a little
    notAfter,
    publicKey: spki,
    signingKey: signer.privateKey,
    signingAlgorithm: signer.signingAlgorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: kind, value: name }], !shortEnoughForCn),
      ...extensions,
      new x509.SubjectKeyIdentifierExtension(subjectKeyId(publicKey)),
    ],
  });

  return {
    certPem: `${cert.toString('pem')}\n`,
    chainPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    notAfter,
  };
}

interface Profile {
  /** The signer's subject exactly as encoded in its certificate. */
  readonly issuer: x509.Name;
  /** The extensions every leaf of this signer carries, after its SAN and before its SKI. */
  readonly extensions: readonly x509.Extension[];
}

// Built once per signer: the ASN.1 round trips of @peculiar/x509 are most of a leaf's cost.
const profiles = new WeakMap<Signer, Promise<Profile>>();

function profileOf(signer: Signer): Promise<Profile> {
  let profile = profiles.get(signer);
  if (profile === undefined) {
    profile = keyId(signer.cert).then((id) => ({
      // Go finds the issuer by comparing these bytes, and re-encoding from a string can change
      // string types (PrintableString vs UTF8).
      issuer: new x509.Name(signer.cert.subjectName.toArrayBuffer()),
      extensions: [
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.BasicConstraintsExtension(false, undefined, true),
        // AKI and SKI: OpenSSL -x509_strict and Python >= 3.13 require the AKI on non-root certs.
        new x509.AuthorityKeyIdentifierExtension(id),
      ],
    }));
    profiles.set(signer, profile);
  }
  return profile;
}

/**
 * RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits, which for an EC key are the
 * uncompressed point 04 || x || y. Computed here, synchronously: webcrypto's digest would cost a
 * thread-pool round trip per leaf.
 */
function subjectKeyId(publicKey: crypto.KeyObject): string {
  const { x, y } = publicKey.export({ format: 'jwk' });
  if (x === undefined || y === undefined) throw new TypeError('leaf key is not an EC key');
  const point = Buffer.concat([Buffer.of(4), Buffer.from(x, 'base64url'), Buffer.from(y, 'base64url')]);
  return crypto.createHash('sha1').update(point).digest('hex');
}

/**
 * Who signs a leaf issued at `now`: the previous CA while a rotation overlaps, with cross.crt
 * sent after the leaf, and ca.crt otherwise. The previous CA's leaves end with the overlap, so
 * contexts.ts renews them in time to switch to ca.crt when it does.
 */
function signerAt(ca: CertificateAuthority, now: Date): { signer: Signer; chainPem: string; until: Date } {
  const { overlap } = ca;
  if (overlap.state === 'active' && now.getTime() < overlap.until.getTime()) {
    return { signer: overlap.previous, chainPem: overlap.crossPem, until: overlap.until };
  }
  return { signer: ca, chainPem: '', until: ca.notAfter };
}

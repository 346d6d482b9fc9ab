// issueLeaf: the leaf profile (positive serial, SAN, EKU, KU, AKI/SKI, validity) and that OpenSSL
// in strict mode and Node accept the chain for EC and RSA CAs alike.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa, type CertificateAuthority } from '../../../src/tls/ca.ts';
import { CaError } from '../../../src/tls/errors.ts';
import { issueLeaf, LEAF_LIFETIME_MS, normalizeHost } from '../../../src/tls/leaf.ts';

const run = promisify(execFile);
const openssl = (cwd: string, ...args: string[]) => run('openssl', args, { cwd });
const DAY_MS = 24 * 3_600_000;

let root: string;
const cas: Record<'ec' | 'rsa' | 'p384' | 'noSki', CertificateAuthority> = {} as never;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pullthrough-leaf-'));

  cas.ec = await loadOrCreateCa({ dir: path.join(root, 'ec') });

  // An RSA CA as rpardini/docker-registry-proxy makes it (create_ca_cert.sh; 2048 bits for speed):
  // its subject has PrintableString and UTF8String attributes, which the leaf's issuer must copy.
  const rsa = path.join(root, 'rsa');
  await fs.mkdir(rsa);
  await openssl(rsa, 'genrsa', '-des3', '-passout', 'pass:foobar', '-traditional', '-out', 'ca.key', '2048');
  const cnf =
    '[req]\ndistinguished_name = dn\n[dn]\n[IA]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical, digitalSignature, cRLSign, keyCertSign\nsubjectKeyIdentifier = hash\n';
  await fs.writeFile(path.join(rsa, 'req.cnf'), cnf);
  await openssl(
    rsa,
    'req',
    '-new',
    '-x509',
    '-days',
    '1300',
    '-sha256',
    '-key',
    'ca.key',
    '-out',
    'ca.crt',
    '-passin',
    'pass:foobar',
    '-subj',
    '/C=NL/ST=Noord Holland/L=Amsterdam/O=ME/OU=IT/CN=DockerMirrorBox CA Root test',
    '-extensions',
    'IA',
    '-config',
    'req.cnf',
  );
  cas.rsa = await loadOrCreateCa({ dir: rsa, passphrase: 'foobar' });

  // An EC P-384 CA with a SEC1 key (`openssl ecparam -genkey`, EC PARAMETERS block included).
  const p384 = path.join(root, 'p384');
  await fs.mkdir(p384);
  await openssl(p384, 'ecparam', '-name', 'secp384r1', '-genkey', '-out', 'ca.key');
  await fs.writeFile(
    path.join(p384, 'req.cnf'),
    '[req]\ndistinguished_name = dn\n[dn]\n[v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical, keyCertSign\nsubjectKeyIdentifier = hash\n',
  );
  await openssl(
    p384,
    'req',
    '-new',
    '-x509',
    '-days',
    '30',
    '-key',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=p384 ca',
    '-extensions',
    'v3',
    '-config',
    'req.cnf',
  );
  cas.p384 = await loadOrCreateCa({ dir: p384 });

  // An EC CA without a subject key identifier (OpenSSL 3 adds one unless told `none`).
  const noSki = path.join(root, 'no-ski');
  await fs.mkdir(noSki);
  await fs.writeFile(
    path.join(noSki, 'req.cnf'),
    '[req]\ndistinguished_name = dn\n[dn]\n[v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical, keyCertSign\nsubjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n',
  );
  await openssl(
    noSki,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-days',
    '30',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=no ski ca',
    '-extensions',
    'v3',
    '-config',
    'req.cnf',
  );
  cas.noSki = await loadOrCreateCa({ dir: noSki });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

let n = 0;
/** Write the CA and leaf certificates into a fresh directory for the openssl CLI. */
async function writeChain(ca: CertificateAuthority, leafPem: string): Promise<string> {
  const dir = path.join(root, `chain${++n}`);
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'ca.crt'), ca.certPem);
  await fs.writeFile(path.join(dir, 'leaf.crt'), leafPem);
  return dir;
}

/** DER TLV at `offset`: where its contents start and where it ends. */
function tlv(der: Buffer, offset: number): { tag: number; contents: number; end: number } {
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let contents = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[contents + i]!;
    contents += bytes;
  }
  return { tag, contents, end: contents + length };
}

/** The raw issuer and subject Names of a certificate, byte for byte (what Go compares). */
function rawNames(der: Buffer): { issuer: Buffer; subject: Buffer } {
  const tbs = tlv(der, tlv(der, 0).contents);
  let at = tbs.contents;
  if (tlv(der, at).tag === 0xa0) at = tlv(der, at).end; // [0] version
  at = tlv(der, at).end; // serialNumber
  at = tlv(der, at).end; // signature AlgorithmIdentifier
  const issuer = tlv(der, at);
  const validity = tlv(der, issuer.end);
  const subject = tlv(der, validity.end);
  return { issuer: der.subarray(at, issuer.end), subject: der.subarray(validity.end, subject.end) };
}

describe.each(['ec', 'rsa', 'p384'] as const)('a leaf from the %s CA', (kind) => {
  it('passes openssl verify -x509_strict as a TLS server certificate for its host', async () => {
    const ca = cas[kind];
    const leaf = await issueLeaf(ca, 'registry.example');
    const dir = await writeChain(ca, leaf.certPem);
    const { stdout } = await openssl(
      dir,
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-verify_hostname',
      'registry.example',
      '-CAfile',
      'ca.crt',
      'leaf.crt',
    );
    expect(stdout.trim()).toBe('leaf.crt: OK');
  });

  it('is issued and signed by the CA as far as Node can tell, and its key matches', async () => {
    const ca = cas[kind];
    const leaf = await issueLeaf(ca, 'registry.example');
    const caCert = new crypto.X509Certificate(ca.certPem);
    const cert = new crypto.X509Certificate(leaf.certPem);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost('registry.example')).toBe('registry.example');
    expect(cert.checkPrivateKey(crypto.createPrivateKey(leaf.keyPem))).toBe(true);
  });

  it('names the CA exactly as its certificate does (byte for byte, as Go matches issuers)', async () => {
    const ca = cas[kind];
    const leaf = await issueLeaf(ca, 'registry.example');
    const caNames = rawNames(new crypto.X509Certificate(ca.certPem).raw);
    const leafNames = rawNames(new crypto.X509Certificate(leaf.certPem).raw);
    expect(leafNames.issuer.equals(caNames.subject)).toBe(true);
  });
});

describe('issueLeaf', () => {
  it('has the leaf profile', async () => {
    const ca = cas.ec;
    const now = new Date();
    const leaf = await issueLeaf(ca, 'registry.example', now);
    const cert = new x509.X509Certificate(leaf.certPem);

    expect(cert.subject).toBe('CN=registry.example');
    expect(cert.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/); // positive, 16 bytes
    expect(cert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(cert.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    expect(cert.notBefore).toEqual(new Date(Math.floor((now.getTime() - 3_600_000) / 1000) * 1000));
    expect(leaf.notAfter.getTime()).toBe(now.getTime() + 30 * DAY_MS);
    expect(cert.notAfter).toEqual(new Date(Math.floor(leaf.notAfter.getTime() / 1000) * 1000));

    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.toJSON()).toEqual([{ type: 'dns', value: 'registry.example' }]);
    expect(san?.critical).toBe(false);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    expect(eku?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    expect(ku).toMatchObject({ usages: x509.KeyUsageFlags.digitalSignature, critical: true });
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(false);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    // RFC 5280 §4.2.1.2 method (1), as @peculiar/x509 computes it from the leaf's own key.
    const ski = await x509.SubjectKeyIdentifierExtension.create(cert.publicKey);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toBe(ski.keyId);
    expect(ski.keyId).toMatch(/^[0-9a-f]{40}$/);

    expect(leaf.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(leaf.certPem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  });

  it('takes the AKI from the CA key when the CA has no SKI', async () => {
    const ca = cas.noSki;
    expect(ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)).toBeNull();
    const leaf = await issueLeaf(ca, 'registry.example');
    const aki = new x509.X509Certificate(leaf.certPem).getExtension(x509.AuthorityKeyIdentifierExtension);
    const expected = await x509.SubjectKeyIdentifierExtension.create(ca.cert.publicKey);
    expect(aki?.keyId).toBe(expected.keyId);
    const dir = await writeChain(ca, leaf.certPem);
    const { stdout } = await openssl(dir, 'verify', '-purpose', 'sslserver', '-CAfile', 'ca.crt', 'leaf.crt');
    expect(stdout.trim()).toBe('leaf.crt: OK');
    // Strict mode wants an SKI in every CA certificate: only the user can fix such a CA.
    await expect(openssl(dir, 'verify', '-x509_strict', '-CAfile', 'ca.crt', 'leaf.crt')).rejects.toThrow(
      /Missing Subject Key Identifier/,
    );
  });

  it('always has a positive 16-byte serial, never the same twice', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const leaf = await issueLeaf(cas.ec, 'registry.example');
      const serial = new crypto.X509Certificate(leaf.certPem).serialNumber;
      expect(serial).toMatch(/^[0-7][0-9A-F]{31}$/);
      serials.add(serial);
    }
    expect(serials.size).toBe(40);
  });

  it.each([
    ['127.0.0.1', '127.0.0.1', 'IP Address:127.0.0.1'],
    ['[::1]', '::1', 'IP Address:0:0:0:0:0:0:0:1'],
    ['2001:DB8::1', '2001:db8::1', 'IP Address:2001:DB8:0:0:0:0:0:1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201', 'IP Address:0:0:0:0:0:FFFF:C000:201'],
  ])('gives the IP literal %s an iPAddress SAN', async (host, ip, altName) => {
    const leaf = await issueLeaf(cas.ec, host);
    const cert = new crypto.X509Certificate(leaf.certPem);
    expect(cert.subjectAltName).toBe(altName);
    expect(cert.checkIP(ip)).toBe(ip);
    const dir = await writeChain(cas.ec, leaf.certPem);
    const { stdout } = await openssl(
      dir,
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-verify_ip',
      ip,
      '-CAfile',
      'ca.crt',
      'leaf.crt',
    );
    expect(stdout.trim()).toBe('leaf.crt: OK');
  });

  it('normalises DNS names: lowercase, no trailing dot, punycode', async () => {
    expect(normalizeHost('Registry.EXAMPLE.')).toEqual({ name: 'registry.example', kind: 'dns' });
    expect(normalizeHost('bücher.example')).toEqual({ name: 'xn--bcher-kva.example', kind: 'dns' });
    const leaf = await issueLeaf(cas.ec, 'Index.Docker.IO');
    expect(new crypto.X509Certificate(leaf.certPem).subjectAltName).toBe('DNS:index.docker.io');
  });

  it('rejects what is not a host', async () => {
    for (const host of [
      '',
      'a b',
      'registry.example/v2',
      'registry.example:443',
      '*.example',
      'a..b',
      '%41.example',
      '127.1',
      `${'a'.repeat(64)}.example`,
    ]) {
      await expect(issueLeaf(cas.ec, host), host).rejects.toThrow(TypeError);
    }
  });

  it('leaves the CN out of hosts longer than 64 characters and marks the SAN critical (RFC 5280 §4.2.1.6)', async () => {
    const host = `${'a'.repeat(60)}.registry.example`;
    const leaf = await issueLeaf(cas.ec, host);
    const cert = new x509.X509Certificate(leaf.certPem);
    expect(cert.subject).toBe('');
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)?.critical).toBe(true);
    const dir = await writeChain(cas.ec, leaf.certPem);
    const { stdout } = await openssl(
      dir,
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-verify_hostname',
      host,
      '-CAfile',
      'ca.crt',
      'leaf.crt',
    );
    expect(stdout.trim()).toBe('leaf.crt: OK');
  });

  it('never outlives the CA, and refuses once the CA has expired', async () => {
    const ca = cas.ec;
    const nearEnd = new Date(ca.notAfter.getTime() - 2 * DAY_MS);
    const leaf = await issueLeaf(ca, 'registry.example', nearEnd);
    expect(leaf.notAfter).toEqual(ca.notAfter);
    expect(leaf.notAfter.getTime() - nearEnd.getTime()).toBeLessThan(LEAF_LIFETIME_MS);

    const error: unknown = await issueLeaf(ca, 'registry.example', ca.notAfter).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).code).toBe('CA_EXPIRED');
  });
});

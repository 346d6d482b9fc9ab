// CA rotation (issue #4): the files `rotateCa` writes, the cross certificate's fields, the overlap
// the proxy loads from them, and the no-flag-day claim itself: after a rotation, a client that
// trusts only the old CA and one that trusts only the new CA both verify the proxy's leaves, in
// a real TLS handshake and with `openssl verify -x509_strict`.

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa, type CertificateAuthority } from '../../../src/tls/ca.ts';
import { LeafContexts } from '../../../src/tls/contexts.ts';
import { CaError, type CaErrorCode } from '../../../src/tls/errors.ts';
import { issueLeaf } from '../../../src/tls/leaf.ts';
import { rotateCa } from '../../../src/tls/rotate.ts';

const run = promisify(execFile);
const openssl = (cwd: string, ...args: string[]) => run('openssl', args, { cwd });
const DAY_MS = 24 * 3_600_000;

let root: string;
let n = 0;
const tempDir = () => path.join(root, `d${++n}`);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pullthrough-rotate-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function caError(promise: Promise<unknown>, code: CaErrorCode): Promise<CaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CaError);
  expect((error as CaError).code).toBe(code);
  expect((error as CaError).message).not.toContain('\n');
  return error as CaError;
}

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;
const read = (dir: string, name: string) => fs.readFile(path.join(dir, name), 'utf8');
const rawSubject = (cert: x509.X509Certificate) => Buffer.from(cert.subjectName.toArrayBuffer());
const ski = (cert: x509.X509Certificate) => cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
const aki = (cert: x509.X509Certificate) => cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;

/** A CA made on first start, then rotated: the directory and both CAs' certificates as PEM. */
async function rotated(options: { created?: Date; rotated?: Date; passphrase?: string } = {}) {
  const dir = tempDir();
  const old = await loadOrCreateCa({
    dir,
    hostname: 'builder-1',
    ...(options.created && { now: options.created }),
  });
  if (options.passphrase !== undefined) {
    const key = crypto.createPrivateKey(await read(dir, 'ca.key'));
    const encrypted = key.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: options.passphrase,
    }) as string;
    await fs.writeFile(path.join(dir, 'ca.key'), encrypted, { mode: 0o600 });
  }
  const oldKeyPem = await read(dir, 'ca.key');
  const rotation = await rotateCa({
    dir,
    hostname: 'builder-1',
    passphrase: options.passphrase,
    ...(options.rotated && { now: options.rotated }),
  });
  return { dir, old, oldKeyPem, rotation, oldPem: old.certPem, newPem: rotation.current.certPem };
}

describe('rotateCa', () => {
  it('keeps the old CA as previous.*, writes a new ca.* and cross.crt, keys 0600, nothing else', async () => {
    const { dir, old, oldKeyPem, rotation } = await rotated();
    expect((await fs.readdir(dir)).sort()).toEqual([
      'ca.crt',
      'ca.key',
      'cross.crt',
      'previous.crt',
      'previous.key',
    ]);
    expect(await mode(path.join(dir, 'ca.key'))).toBe(0o600);
    expect(await mode(path.join(dir, 'previous.key'))).toBe(0o600);
    expect(await mode(path.join(dir, 'ca.crt'))).toBe(0o644);
    expect(await mode(path.join(dir, 'cross.crt'))).toBe(0o644);

    expect(await read(dir, 'previous.crt')).toBe(old.certPem);
    expect(await read(dir, 'previous.key')).toBe(oldKeyPem);
    expect(rotation.previous.fingerprintSha256).toBe(old.fingerprintSha256);
    expect(await read(dir, 'ca.crt')).toBe(rotation.current.certPem);
    expect(rotation.current.fingerprintSha256).not.toBe(old.fingerprintSha256);
    expect(await read(dir, 'ca.key')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('makes a new CA: fresh key, new serial, a subject of its own, pathlen 1 for the cross certificate', async () => {
    const created = new Date('2026-03-01T12:00:00Z');
    const now = new Date('2035-12-15T08:30:00Z');
    const { old, rotation } = await rotated({ created, rotated: now });
    const cert = rotation.current.cert;
    expect(cert.subject).toBe('O=pullthrough, CN=pullthrough CA builder-1 2035-12-15T08:30:00Z');
    expect(cert.subject).not.toBe(old.cert.subject);
    expect(cert.serialNumber).not.toBe(old.cert.serialNumber);
    expect(ski(cert)).not.toBe(ski(old.cert));
    expect(cert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(cert.notBefore).toEqual(new Date('2035-12-15T07:30:00Z'));
    expect(cert.notAfter).toEqual(new Date('2045-12-15T08:30:00Z'));
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({
      ca: true,
      pathLength: 1,
      critical: true,
    });
    expect(await cert.isSelfSigned()).toBe(true);
  });

  it('gives the new CA another subject even within the second the old one was made', async () => {
    const now = new Date('2026-03-01T12:00:00Z');
    const { old, rotation } = await rotated({ created: now, rotated: now });
    expect(rotation.current.cert.subject).not.toBe(old.cert.subject);
  });

  it('writes cross.crt: the old subject, key and SKI, issued and signed by the new CA, no longer than the old CA', async () => {
    const created = new Date('2026-03-01T12:00:00Z');
    const now = new Date('2035-12-15T08:30:00Z');
    const { dir, old, rotation } = await rotated({ created, rotated: now });
    const cross = new x509.X509Certificate(await read(dir, 'cross.crt'));
    const current = rotation.current.cert;

    expect(rawSubject(cross).equals(rawSubject(old.cert))).toBe(true);
    expect(Buffer.from(cross.issuerName.toArrayBuffer()).equals(rawSubject(current))).toBe(true);
    expect(Buffer.from(cross.publicKey.rawData).equals(Buffer.from(old.cert.publicKey.rawData))).toBe(true);
    expect(ski(cross)).toBe(ski(old.cert));
    expect(aki(cross)).toBe(ski(current));
    expect(await cross.verify({ publicKey: current.publicKey, signatureOnly: true })).toBe(true);
    expect(cross.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(cross.notBefore).toEqual(new Date('2035-12-15T07:30:00Z'));
    expect(cross.notAfter).toEqual(old.notAfter);
    expect(rotation.until).toEqual(old.notAfter);
    expect(cross.getExtension(x509.BasicConstraintsExtension)).toMatchObject({
      ca: true,
      pathLength: 0,
      critical: true,
    });
    const ku = cross.getExtension(x509.KeyUsagesExtension);
    expect(ku).toMatchObject({
      usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
      critical: true,
    });
  });

  it('keeps an encrypted key encrypted: previous.key as it was, the new ca.key with the same passphrase', async () => {
    const { dir, old } = await rotated({ passphrase: 'hunter2' });
    expect(await read(dir, 'previous.key')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(await read(dir, 'ca.key')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    await caError(loadOrCreateCa({ dir }), 'CA_KEY_ENCRYPTED');
    const ca = await loadOrCreateCa({ dir, passphrase: 'hunter2' });
    expect(ca.overlap.state).toBe('active');
    if (ca.overlap.state === 'active')
      expect(ca.overlap.previous.fingerprintSha256).toBe(old.fingerprintSha256);
  });

  it('rotates a user RSA CA: the cross certificate carries its RSA key', async () => {
    const dir = tempDir();
    await fs.mkdir(dir);
    await openssl(dir, 'genrsa', '-out', 'ca.key', '2048');
    // rpardini/docker-registry-proxy's IA extensions (2048 bits here for speed).
    await fs.writeFile(
      path.join(dir, 'req.cnf'),
      '[req]\ndistinguished_name = dn\n[dn]\n[IA]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical, digitalSignature, cRLSign, keyCertSign\nsubjectKeyIdentifier = hash\n',
    );
    await openssl(
      dir,
      ...['req', '-new', '-x509', '-days', '30', '-key', 'ca.key', '-out', 'ca.crt'],
      ...['-subj', '/C=NL/O=ME/CN=DockerMirrorBox CA Root test', '-extensions', 'IA', '-config', 'req.cnf'],
    );
    await fs.rm(path.join(dir, 'req.cnf'));
    const oldPem = await read(dir, 'ca.crt');
    const rotation = await rotateCa({ dir });
    expect(rotation.previous.signingAlgorithm.name).toBe('RSASSA-PKCS1-v1_5');
    const cross = new x509.X509Certificate(await read(dir, 'cross.crt'));
    expect(new crypto.X509Certificate(Buffer.from(cross.rawData)).publicKey.asymmetricKeyType).toBe('rsa');
    expect(cross.subject).toBe('C=NL, O=ME, CN=DockerMirrorBox CA Root test');
    const ca = await loadOrCreateCa({ dir });
    const leaf = await issueLeaf(ca, 'registry.example');
    await expectVerifies(oldPem, rotation.current.certPem, leaf.certPem, leaf.chainPem);
  });

  it('refuses when there is no CA to rotate (CA_NOT_FOUND), and creates nothing', async () => {
    const dir = tempDir();
    const error = await caError(rotateCa({ dir }), 'CA_NOT_FOUND');
    expect(error.message).toContain(dir);
    await expect(fs.readdir(dir)).rejects.toThrow(/ENOENT/);
  });

  it('refuses to rotate again while the previous CA is valid, and changes nothing', async () => {
    const { dir } = await rotated();
    const before = await Promise.all(
      ['ca.crt', 'ca.key', 'previous.crt', 'cross.crt'].map((f) => read(dir, f)),
    );
    const error = await caError(rotateCa({ dir }), 'CA_ROTATION_IN_PROGRESS');
    expect(error.message).toContain(path.join(dir, 'previous.crt'));
    expect(error.message).toContain('delete previous.crt, previous.key and cross.crt');
    const after = await Promise.all(
      ['ca.crt', 'ca.key', 'previous.crt', 'cross.crt'].map((f) => read(dir, f)),
    );
    expect(after).toEqual(before);
  });

  it('rotates again once the previous CA has expired, replacing it with the current one', async () => {
    const { dir, rotation } = await rotated({
      created: new Date('2026-01-01T00:00:00Z'),
      rotated: new Date('2035-10-01T00:00:00Z'),
    });
    const later = new Date('2036-01-02T00:00:00Z'); // the first CA expired on 2036-01-01
    const again = await rotateCa({ dir, now: later });
    expect(again.previous.fingerprintSha256).toBe(rotation.current.fingerprintSha256);
    expect(await read(dir, 'previous.crt')).toBe(rotation.current.certPem);
  });

  it('rotates again after a rotation that stopped before replacing ca.crt (previous.crt is ca.crt)', async () => {
    const dir = tempDir();
    const old = await loadOrCreateCa({ dir });
    await fs.copyFile(path.join(dir, 'ca.crt'), path.join(dir, 'previous.crt'));
    await fs.copyFile(path.join(dir, 'ca.key'), path.join(dir, 'previous.key'));
    const loaded = await loadOrCreateCa({ dir });
    expect(loaded.overlap).toMatchObject({ state: 'ignored' });
    if (loaded.overlap.state === 'ignored')
      expect(loaded.overlap.reason).toContain('run pullthrough ca rotate again');
    const rotation = await rotateCa({ dir });
    expect(rotation.previous.fingerprintSha256).toBe(old.fingerprintSha256);
    expect((await loadOrCreateCa({ dir })).overlap.state).toBe('active');
  });
});

/** `openssl verify -x509_strict` as a TLS server certificate, trusting only `trusted`. */
async function opensslVerify(trusted: string, leafPem: string, untrusted?: string): Promise<string> {
  const dir = tempDir();
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'trusted.crt'), trusted);
  await fs.writeFile(path.join(dir, 'leaf.pem'), leafPem);
  const args = ['verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'registry.example'];
  if (untrusted !== undefined) {
    await fs.writeFile(path.join(dir, 'cross.crt'), untrusted);
    args.push('-untrusted', 'cross.crt');
  }
  const { stdout } = await openssl(dir, ...args, '-CAfile', 'trusted.crt', 'leaf.pem');
  return stdout.trim();
}

async function expectVerifies(oldPem: string, newPem: string, leafPem: string, chainPem: string) {
  expect(await opensslVerify(oldPem, leafPem, chainPem)).toBe('leaf.pem: OK');
  expect(await opensslVerify(newPem, leafPem, chainPem)).toBe('leaf.pem: OK');
}

describe('the overlap the proxy loads after a rotation', () => {
  it('signs leaves with the previous CA and sends cross.crt after them', async () => {
    const { dir, old, rotation } = await rotated();
    const ca = await loadOrCreateCa({ dir });
    expect(ca.fingerprintSha256).toBe(rotation.current.fingerprintSha256); // ca.crt is the new CA
    expect(ca.overlap).toMatchObject({ state: 'active', until: old.notAfter });

    const leaf = await issueLeaf(ca, 'registry.example');
    const cert = new crypto.X509Certificate(leaf.certPem);
    expect(cert.checkIssued(new crypto.X509Certificate(old.certPem))).toBe(true);
    expect(cert.verify(new crypto.X509Certificate(old.certPem).publicKey)).toBe(true);
    expect(leaf.chainPem).toBe(await read(dir, 'cross.crt'));
    expect(leaf.notAfter.getTime()).toBeLessThanOrEqual(old.notAfter.getTime());
  });

  it('gives leaves that openssl verifies trusting only the old CA, or only the new one', async () => {
    const { dir, oldPem, newPem } = await rotated();
    const leaf = await issueLeaf(await loadOrCreateCa({ dir }), 'registry.example');
    expect(await opensslVerify(oldPem, leaf.certPem)).toBe('leaf.pem: OK');
    expect(await opensslVerify(newPem, leaf.certPem, leaf.chainPem)).toBe('leaf.pem: OK');
    await expectVerifies(oldPem, newPem, leaf.certPem, leaf.chainPem);
    // And without cross.crt a client that trusts only the new CA has no way to the leaf.
    await expect(opensslVerify(newPem, leaf.certPem)).rejects.toThrow(/unable to get local issuer/);
  });

  it('signs with the new CA alone once the previous CA has expired (state "ended"), cutting leaves short before', async () => {
    const created = new Date('2026-01-01T00:00:00Z');
    const { dir, old, rotation } = await rotated({ created, rotated: new Date('2035-12-20T00:00:00Z') });
    const beforeEnd = new Date(old.notAfter.getTime() - 2 * DAY_MS);
    const during = await loadOrCreateCa({ dir, now: beforeEnd });
    const short = await issueLeaf(during, 'registry.example', beforeEnd);
    expect(short.notAfter).toEqual(old.notAfter); // renewed (contexts.ts) before the switch
    const afterEnd = new Date(old.notAfter.getTime() + 1000);
    const leaf = await issueLeaf(during, 'registry.example', afterEnd);
    expect(leaf.chainPem).toBe('');
    expect(new x509.X509Certificate(leaf.certPem).issuer).toBe(rotation.current.cert.subject);

    const ended = await loadOrCreateCa({ dir, now: afterEnd });
    expect(ended.overlap).toEqual({ state: 'ended', until: old.notAfter });
  });

  it('is none once previous.* and cross.crt are deleted: leaves from the new CA, which the old one no longer verifies', async () => {
    const { dir, oldPem, newPem } = await rotated();
    for (const name of ['previous.crt', 'previous.key', 'cross.crt']) await fs.rm(path.join(dir, name));
    const ca = await loadOrCreateCa({ dir });
    expect(ca.overlap).toEqual({ state: 'none' });
    const leaf = await issueLeaf(ca, 'registry.example');
    expect(leaf.chainPem).toBe('');
    expect(await opensslVerify(newPem, leaf.certPem)).toBe('leaf.pem: OK');
    await expect(opensslVerify(oldPem, leaf.certPem)).rejects.toThrow(/unable to get local issuer/);
  });

  it('ignores incomplete rotation files, saying which are missing', async () => {
    const { dir } = await rotated();
    await fs.rm(path.join(dir, 'cross.crt'));
    const ca = await loadOrCreateCa({ dir });
    expect(ca.overlap.state).toBe('ignored');
    if (ca.overlap.state !== 'ignored') return;
    expect(ca.overlap.reason).toContain('cross.crt missing');
    expect(ca.overlap.reason).toContain('signing leaves with ca.crt alone');
    expect(ca.overlap.reason).not.toContain('\n');
    expect((await issueLeaf(ca, 'registry.example')).chainPem).toBe('');
  });

  it('ignores a cross.crt that does not link previous.crt to ca.crt', async () => {
    const a = await rotated();
    const b = await rotated();
    await fs.copyFile(path.join(b.dir, 'cross.crt'), path.join(a.dir, 'cross.crt'));
    const ca = await loadOrCreateCa({ dir: a.dir });
    expect(ca.overlap).toMatchObject({ state: 'ignored' });
    if (ca.overlap.state === 'ignored') expect(ca.overlap.reason).toContain('does not link');
  });

  it.skipIf(process.platform === 'win32')(
    'refuses a previous.key others can read, even when the rotation files are otherwise ignored',
    async () => {
      const { dir } = await rotated();
      await fs.chmod(path.join(dir, 'previous.key'), 0o644);
      const error = await caError(loadOrCreateCa({ dir }), 'CA_KEY_PERMISSIONS');
      expect(error.message).toContain(path.join(dir, 'previous.key'));
      await fs.rm(path.join(dir, 'cross.crt'));
      await caError(loadOrCreateCa({ dir }), 'CA_KEY_PERMISSIONS');
    },
  );

  it('refuses a broken cross.crt', async () => {
    const { dir } = await rotated();
    await fs.writeFile(
      path.join(dir, 'cross.crt'),
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    );
    await caError(loadOrCreateCa({ dir }), 'CA_INVALID');
  });
});

// The claim of issue #4 in a real handshake: no client changes anything on the day of the rotation.
describe('TLS after a rotation', () => {
  async function handshake(port: number, trusted: string): Promise<{ authorized: boolean; error?: string }> {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'registry.example', ca: trusted });
    try {
      await once(socket, 'secureConnect');
      return { authorized: socket.authorized };
    } catch (error) {
      return { authorized: false, error: (error as NodeJS.ErrnoException).code ?? String(error) };
    } finally {
      socket.destroy();
    }
  }

  async function serving(ca: CertificateAuthority, body: (port: number) => Promise<void>): Promise<void> {
    const contexts = new LeafContexts(ca);
    const server = tls.createServer({
      SNICallback: (servername, callback) => {
        contexts.get(servername).then(
          (context) => callback(null, context),
          (error: unknown) => callback(error as Error),
        );
      },
    });
    server.on('secureConnection', (socket) => socket.end());
    server.on('tlsClientError', () => undefined); // the rejecting client hangs up mid-handshake
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      await body((server.address() as net.AddressInfo).port);
    } finally {
      server.close();
      await once(server, 'close');
    }
  }

  it('a client trusting only the old CA and one trusting only the new CA both verify the proxy', async () => {
    const { dir, oldPem, newPem } = await rotated();
    await serving(await loadOrCreateCa({ dir }), async (port) => {
      expect(await handshake(port, oldPem)).toEqual({ authorized: true });
      expect(await handshake(port, newPem)).toEqual({ authorized: true });
      expect(await handshake(port, oldPem + newPem)).toEqual({ authorized: true });
    });
  });

  it('after the rotation is ended, only clients that trust the new CA verify the proxy', async () => {
    const { dir, oldPem, newPem } = await rotated();
    for (const name of ['previous.crt', 'previous.key', 'cross.crt']) await fs.rm(path.join(dir, name));
    await serving(await loadOrCreateCa({ dir }), async (port) => {
      expect(await handshake(port, newPem)).toEqual({ authorized: true });
      expect(await handshake(port, oldPem)).toEqual({
        authorized: false,
        error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    });
  });
});

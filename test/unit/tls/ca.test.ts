// loadOrCreateCa: creating and persisting a CA, reloading it, and every way a user's CA directory
// can be wrong (half a CA, encrypted key without or with a wrong passphrase, mismatched key, ...).

import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa } from '../../../src/tls/ca.ts';
import { CaError, type CaErrorCode } from '../../../src/tls/errors.ts';
import { issueLeaf } from '../../../src/tls/leaf.ts';

const run = promisify(execFile);
const openssl = (cwd: string, ...args: string[]) => run('openssl', args, { cwd });

let root: string;
let n = 0;
/** A fresh empty directory under this file's temp root (removed in afterAll). */
const tempDir = () => path.join(root, `d${++n}`);

// RSA key generation is the slow part: make each rpardini-style CA once and copy it per test.
let rpardiniLegacy: string;
let rpardiniPkcs8: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pullthrough-ca-'));
  rpardiniLegacy = path.join(root, 'rpardini-legacy');
  rpardiniPkcs8 = path.join(root, 'rpardini-pkcs8');
  await Promise.all([makeRpardiniCa(rpardiniLegacy, true), makeRpardiniCa(rpardiniPkcs8, false)]);
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** A fresh copy of one of the rpardini-style CAs. */
async function rpardiniCa(legacy: boolean): Promise<string> {
  const dir = tempDir();
  await fs.cp(legacy ? rpardiniLegacy : rpardiniPkcs8, dir, { recursive: true });
  return dir;
}

/**
 * A CA as rpardini/docker-registry-proxy's create_ca_cert.sh makes it: `openssl genrsa -des3
 * -passout pass:foobar`, then `openssl req -new -x509` with its IA extensions. RSA 2048 here, not
 * 4096, for speed. `legacy` writes the pre-OpenSSL-3 `Proc-Type: 4,ENCRYPTED` PKCS#1 form.
 */
async function makeRpardiniCa(dir: string, legacy: boolean): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await openssl(
    dir,
    'genrsa',
    '-des3',
    '-passout',
    'pass:foobar',
    ...(legacy ? ['-traditional'] : []),
    '-out',
    'ca.key',
    '2048',
  );
  const cnf =
    '[req]\ndistinguished_name = dn\n[dn]\n[IA]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical, digitalSignature, cRLSign, keyCertSign\nsubjectKeyIdentifier = hash\n';
  await fs.writeFile(path.join(dir, 'req.cnf'), cnf);
  await openssl(
    dir,
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
  await fs.rm(path.join(dir, 'req.cnf'));
}

/** Resolves to the CaError thrown by `promise` (fails the test if it resolves or throws another kind). */
async function caError(promise: Promise<unknown>, code: CaErrorCode): Promise<CaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CaError);
  const caErr = error as CaError;
  expect(caErr.code).toBe(code);
  expect(caErr.message).not.toContain('\n');
  return caErr;
}

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;

describe('creating a CA', () => {
  it('writes ca.key 0600 and ca.crt 0644 into a new 0700 dir, and reloads as the same CA', async () => {
    const dir = path.join(tempDir(), 'nested', 'ca');
    const now = new Date('2026-03-01T12:00:00.000Z');
    const ca = await loadOrCreateCa({ dir, hostname: 'builder-1', now });

    expect(ca.created).toBe(true);
    expect((await fs.readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key']); // no temp files left
    expect(await mode(path.join(dir, 'ca.key'))).toBe(0o600);
    expect(await mode(path.join(dir, 'ca.crt'))).toBe(0o644);
    expect(await mode(dir)).toBe(0o700);
    expect(await fs.readFile(path.join(dir, 'ca.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(await fs.readFile(path.join(dir, 'ca.crt'), 'utf8')).toBe(ca.certPem);

    const again = await loadOrCreateCa({ dir, now });
    expect(again.created).toBe(false);
    expect(again.fingerprintSha256).toBe(ca.fingerprintSha256);
    expect(again.certPem).toBe(ca.certPem);
    expect(again.signingAlgorithm).toEqual({ name: 'ECDSA', hash: 'SHA-256' });
    const der = new crypto.X509Certificate(ca.certPem).raw;
    expect(ca.fingerprintSha256).toBe(crypto.createHash('sha256').update(der).digest('hex'));
  });

  it('has the CA profile: P-256, 10 years from an hour ago, positive serial, critical CA extensions, SKI', async () => {
    const dir = tempDir();
    const now = new Date('2026-03-01T12:00:00.000Z');
    const ca = await loadOrCreateCa({ dir, hostname: 'builder-1', now });
    const cert = ca.cert;

    expect(cert.subject).toBe('O=pullthrough, CN=pullthrough CA builder-1 2026-03-01T12:00:00Z');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.notBefore).toEqual(new Date('2026-03-01T11:00:00.000Z'));
    expect(cert.notAfter).toEqual(new Date('2036-03-01T12:00:00.000Z'));
    expect(ca.notAfter).toEqual(cert.notAfter);
    expect(cert.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(cert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });

    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect(bc).toMatchObject({ ca: true, pathLength: 0, critical: true });
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    expect(ku?.critical).toBe(true);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(await cert.isSelfSigned()).toBe(true);

    const { stdout } = await openssl(dir, 'verify', '-x509_strict', '-CAfile', 'ca.crt', 'ca.crt');
    expect(stdout.trim()).toBe('ca.crt: OK');
  });

  it('cuts the CN to 64 characters, keeping the date', async () => {
    const ca = await loadOrCreateCa({
      dir: tempDir(),
      hostname: 'h'.repeat(100),
      now: new Date('2026-03-01T12:00:00Z'),
    });
    const cn = ca.cert.subjectName.getField('CN')[0] ?? '';
    expect(cn).toHaveLength(64);
    expect(cn).toMatch(/^pullthrough CA h+ 2026-03-01T12:00:00Z$/);
  });

  it('signs with the key it wrote', async () => {
    const dir = tempDir();
    await loadOrCreateCa({ dir });
    const ca = await loadOrCreateCa({ dir });
    const data = Buffer.from('pullthrough');
    const signature = await crypto.webcrypto.subtle.sign(ca.signingAlgorithm, ca.privateKey, data);
    const publicKey = new crypto.X509Certificate(await fs.readFile(path.join(dir, 'ca.crt'))).publicKey;
    const ok = crypto.verify(
      'sha256',
      data,
      { key: publicKey, dsaEncoding: 'ieee-p1363' },
      Buffer.from(signature),
    );
    expect(ok).toBe(true);
    expect(ca.privateKey.extractable).toBe(false);
  });

  it('removes temp files a crash left behind, and nothing else', async () => {
    const dir = tempDir();
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, '.ca.key.4242.a1b2c3.tmp'), 'half a key');
    await fs.writeFile(path.join(dir, 'README.md'), 'mine');
    await loadOrCreateCa({ dir });
    expect((await fs.readdir(dir)).sort()).toEqual(['README.md', 'ca.crt', 'ca.key']);
  });

  it('fails with CA_UNWRITABLE when the directory cannot be made', async () => {
    const dir = tempDir();
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'file'), '');
    const error = await caError(loadOrCreateCa({ dir: path.join(dir, 'file', 'ca') }), 'CA_UNWRITABLE');
    expect(error.message).toContain(path.join(dir, 'file', 'ca'));
    expect(error.cause).toBeDefined();
  });
});

describe('loading a user CA', () => {
  it('loads an rpardini-style CA with a legacy DES3-encrypted PKCS#1 key and the right passphrase', async () => {
    const dir = await rpardiniCa(true);
    expect(await fs.readFile(path.join(dir, 'ca.key'), 'utf8')).toContain('Proc-Type: 4,ENCRYPTED');

    const ca = await loadOrCreateCa({ dir, passphrase: 'foobar' });
    expect(ca.created).toBe(false);
    expect(ca.signingAlgorithm).toEqual({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' });
    expect(ca.cert.subject).toContain('CN=DockerMirrorBox CA Root test');
    expect((await fs.readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key']); // nothing rewritten
  });

  it('loads a PKCS#8 encrypted key (what `openssl genrsa -des3` writes since OpenSSL 3)', async () => {
    const dir = await rpardiniCa(false);
    expect(await fs.readFile(path.join(dir, 'ca.key'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    const ca = await loadOrCreateCa({ dir, passphrase: 'foobar' });
    expect(ca.signingAlgorithm.name).toBe('RSASSA-PKCS1-v1_5');
  });

  it('loads a legacy AES-encrypted PKCS#1 key made by Node', async () => {
    const dir = tempDir();
    await fs.mkdir(dir);
    const { privateKey } = crypto.generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'foobar' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await fs.writeFile(path.join(dir, 'ca.key'), privateKey, { mode: 0o600 });
    await openssl(
      dir,
      'req',
      '-new',
      '-x509',
      '-days',
      '30',
      '-key',
      'ca.key',
      '-passin',
      'pass:foobar',
      '-subj',
      '/CN=node rsa ca',
      '-out',
      'ca.crt',
    );
    await expect(loadOrCreateCa({ dir, passphrase: 'foobar' })).resolves.toMatchObject({ created: false });
    await caError(loadOrCreateCa({ dir, passphrase: 'wrong' }), 'CA_KEY_PASSPHRASE');
  });

  it('asks for ca.passphrase / CA_KEY_PASSPHRASE when the key is encrypted and none is given', async () => {
    for (const legacy of [true, false]) {
      const dir = await rpardiniCa(legacy);
      const error = await caError(loadOrCreateCa({ dir }), 'CA_KEY_ENCRYPTED');
      expect(error.message).toContain(path.join(dir, 'ca.key'));
      expect(error.message).toContain('ca.passphrase');
      expect(error.message).toContain('CA_KEY_PASSPHRASE');
      await caError(loadOrCreateCa({ dir, passphrase: undefined }), 'CA_KEY_ENCRYPTED');
    }
  });

  it('reports a wrong passphrase as CA_KEY_PASSPHRASE, with the cause chained', async () => {
    for (const legacy of [true, false]) {
      const dir = await rpardiniCa(legacy);
      const error = await caError(loadOrCreateCa({ dir, passphrase: 'foobaz' }), 'CA_KEY_PASSPHRASE');
      expect(error.message).toContain(path.join(dir, 'ca.key'));
      expect(error.message).toContain('CA_KEY_PASSPHRASE');
      expect(error.cause).toBeInstanceOf(Error);
      expect(error.message).not.toContain('foobaz');
    }
  });

  it('loads a SEC1 EC P-384 key (with its EC PARAMETERS block) and signs with SHA-384', async () => {
    const dir = tempDir();
    await fs.mkdir(dir);
    await openssl(dir, 'ecparam', '-name', 'secp384r1', '-genkey', '-out', 'ca.key');
    expect(await fs.readFile(path.join(dir, 'ca.key'), 'utf8')).toContain('BEGIN EC PRIVATE KEY');
    await openssl(
      dir,
      'req',
      '-new',
      '-x509',
      '-days',
      '30',
      '-key',
      'ca.key',
      '-subj',
      '/CN=p384 ca',
      '-out',
      'ca.crt',
    );
    const ca = await loadOrCreateCa({ dir });
    expect(ca.signingAlgorithm).toEqual({ name: 'ECDSA', hash: 'SHA-384' });
  });

  it('rejects a key that is not the certificate’s (CA_KEY_MISMATCH), for EC/EC and RSA/EC', async () => {
    const a = await loadOrCreateCa({ dir: tempDir() });
    const bDir = tempDir();
    await loadOrCreateCa({ dir: bDir });
    const dir = tempDir();
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'ca.crt'), a.certPem);
    await fs.copyFile(path.join(bDir, 'ca.key'), path.join(dir, 'ca.key'));
    const error = await caError(loadOrCreateCa({ dir }), 'CA_KEY_MISMATCH');
    expect(error.message).toContain(path.join(dir, 'ca.key'));
    expect(error.message).toContain(path.join(dir, 'ca.crt'));

    const rsaDir = await rpardiniCa(true);
    await fs.copyFile(path.join(bDir, 'ca.key'), path.join(rsaDir, 'ca.key'));
    await caError(loadOrCreateCa({ dir: rsaDir }), 'CA_KEY_MISMATCH');
  });

  it('refuses half a CA and leaves it untouched (CA_INCOMPLETE)', async () => {
    const source = tempDir();
    await loadOrCreateCa({ dir: source });
    for (const [present, missing] of [
      ['ca.crt', 'ca.key'],
      ['ca.key', 'ca.crt'],
    ] as const) {
      const dir = tempDir();
      await fs.mkdir(dir);
      await fs.copyFile(path.join(source, present), path.join(dir, present));
      const error = await caError(loadOrCreateCa({ dir }), 'CA_INCOMPLETE');
      expect(error.message).toContain(path.join(dir, missing));
      expect(await fs.readdir(dir)).toEqual([present]);
      expect(await fs.readFile(path.join(dir, present))).toEqual(
        await fs.readFile(path.join(source, present)),
      );
    }
  });

  it('rejects a server certificate as CA_INVALID', async () => {
    const ca = await loadOrCreateCa({ dir: tempDir() });
    const leaf = await issueLeaf(ca, 'registry.example');
    const dir = tempDir();
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'ca.crt'), leaf.certPem);
    await fs.writeFile(path.join(dir, 'ca.key'), leaf.keyPem, { mode: 0o600 });
    const error = await caError(loadOrCreateCa({ dir }), 'CA_INVALID');
    expect(error.message).toContain('not a CA certificate');
  });

  it('rejects garbage as CA_INVALID', async () => {
    const source = tempDir();
    await loadOrCreateCa({ dir: source });

    const badCert = tempDir();
    await fs.mkdir(badCert);
    await fs.writeFile(path.join(badCert, 'ca.crt'), 'not a certificate\n');
    await fs.copyFile(path.join(source, 'ca.key'), path.join(badCert, 'ca.key'));
    await caError(loadOrCreateCa({ dir: badCert }), 'CA_INVALID');

    const badKey = tempDir();
    await fs.mkdir(badKey);
    await fs.copyFile(path.join(source, 'ca.crt'), path.join(badKey, 'ca.crt'));
    await fs.writeFile(
      path.join(badKey, 'ca.key'),
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      { mode: 0o600 },
    );
    const error = await caError(loadOrCreateCa({ dir: badKey }), 'CA_INVALID');
    expect(error.cause).toBeDefined();
  });

  it('rejects an expired CA (CA_EXPIRED)', async () => {
    const dir = tempDir();
    await loadOrCreateCa({ dir, now: new Date('2026-01-01T00:00:00Z') });
    await caError(loadOrCreateCa({ dir, now: new Date('2036-01-01T00:00:01Z') }), 'CA_EXPIRED');
  });

  it('rejects an Ed25519 CA key (CA_KEY_UNSUPPORTED)', async () => {
    const dir = tempDir();
    await fs.mkdir(dir);
    await openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'ed25519',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '30',
      '-subj',
      '/CN=ed ca',
    );
    await caError(loadOrCreateCa({ dir }), 'CA_KEY_UNSUPPORTED');
  });

  it('reports a CA file it cannot read as CA_UNREADABLE', async () => {
    const source = tempDir();
    await loadOrCreateCa({ dir: source });
    const dir = tempDir();
    await fs.mkdir(path.join(dir, 'ca.key'), { recursive: true }); // a directory where the key should be
    await fs.copyFile(path.join(source, 'ca.crt'), path.join(dir, 'ca.crt'));
    const error = await caError(loadOrCreateCa({ dir }), 'CA_UNREADABLE');
    expect(error.message).toContain(path.join(dir, 'ca.key'));
  });
});

describe('the CA key permission check (issue #4)', () => {
  const isRoot = process.getuid?.() === 0;

  it.skipIf(process.platform === 'win32')(
    'refuses a key others can read, naming the file, its mode and the fix',
    async () => {
      const dir = tempDir();
      await loadOrCreateCa({ dir });
      const keyPath = path.join(dir, 'ca.key');
      await fs.chmod(keyPath, 0o644);
      const error = await caError(loadOrCreateCa({ dir }), 'CA_KEY_PERMISSIONS');
      const whom = isRoot ? 'others' : 'group/others'; // root-owned: only the "others" bits count
      expect(error.message).toBe(
        `CA key ${keyPath} is readable by ${whom} (mode 0644): run chmod 600 ${keyPath}`,
      );
      await fs.chmod(keyPath, 0o602);
      expect((await caError(loadOrCreateCa({ dir }), 'CA_KEY_PERMISSIONS')).message).toContain(
        'is writable by others (mode 0602)',
      );
      await fs.chmod(keyPath, 0o600);
      await expect(loadOrCreateCa({ dir })).resolves.toMatchObject({ created: false });
      await fs.chmod(keyPath, 0o400);
      await expect(loadOrCreateCa({ dir })).resolves.toMatchObject({ created: false });
    },
  );

  it.skipIf(process.platform === 'win32')(
    'checks the key before anything else, so an encrypted or broken CA is refused for it too',
    async () => {
      const dir = await rpardiniCa(true);
      await fs.chmod(path.join(dir, 'ca.key'), 0o666);
      await caError(loadOrCreateCa({ dir }), 'CA_KEY_PERMISSIONS');
    },
  );

  // The PostgreSQL rule: a group may read a root-owned key (an administrator's grant, what a
  // Kubernetes secret with fsGroup looks like), not a key owned by anyone else.
  it.skipIf(!isRoot)('lets a group read a key only when root owns it', async () => {
    const dir = tempDir();
    await loadOrCreateCa({ dir });
    const keyPath = path.join(dir, 'ca.key');
    await fs.chmod(keyPath, 0o440);
    await expect(loadOrCreateCa({ dir })).resolves.toMatchObject({ created: false });
    await fs.chown(keyPath, 65534, 65534);
    const error = await caError(loadOrCreateCa({ dir }), 'CA_KEY_PERMISSIONS');
    expect(error.message).toBe(
      `CA key ${keyPath} is readable by its group (mode 0440): run chmod 600 ${keyPath}`,
    );
  });
});

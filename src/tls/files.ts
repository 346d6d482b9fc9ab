// The CA directory on disk: its file names, reading them, the private-key permission check and
// atomic writes. Parses nothing (signer.ts does), decides nothing (ca.ts, overlap.ts, rotate.ts).
//
// Layout of the CA directory (`ca.dir` in config):
//   ca.crt        the CA certificate, PEM, mode 0644: distribute it to every client
//   ca.key        its private key, PEM, mode 0600 (PKCS#8 when we create it; a user CA may bring
//                 PKCS#8, SEC1 or PKCS#1, plain or encrypted with `ca.passphrase`/CA_KEY_PASSPHRASE)
//   previous.crt  only during a rotation (`pullthrough ca rotate`, rotate.ts): the CA that ca.crt
//   previous.key  replaces, which keeps signing leaves until every client trusts ca.crt; key 0600
//   cross.crt     only during a rotation: previous.crt's subject and key certified by ca.crt, sent
//                 after each leaf so that clients that trust only ca.crt verify those leaves too
//   next.key      only while `ca rotate` runs (or after it crashed): the new pair, written and
//   next.crt      synced beside ca.* before they are renamed over ca.key, then ca.crt (staged.ts
//                 settles what a crash left at the next load)
//   .<file>.<pid>.<random>.tmp  temp files of an atomic write (temp + rename in the same
//                 directory); any left by a crash are removed at the next start

import crypto from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CaError } from './errors.ts';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const PREVIOUS_CERT_FILE = 'previous.crt';
export const PREVIOUS_KEY_FILE = 'previous.key';
export const CROSS_CERT_FILE = 'cross.crt';
export const NEXT_CERT_FILE = 'next.crt';
export const NEXT_KEY_FILE = 'next.key';

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(file: string): Promise<string | undefined> {
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

/**
 * Refuse a private key that other users may read (issue #4): whoever reads it can mint
 * certificates every client of the proxy trusts. The rule is PostgreSQL's for its server key:
 * nothing for others, and nothing for the group unless root owns the file, since a root-owned
 * 0640/0440 key is an administrator's deliberate grant (a Kubernetes secret mounted with
 * `fsGroup` gets exactly that). Windows has no POSIX modes: nothing to check there.
 */
export async function checkKeyMode(keyPath: string): Promise<void> {
  if (process.platform === 'win32') return;
  let stat;
  try {
    stat = await fs.stat(keyPath);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new CaError('CA_UNREADABLE', `cannot stat ${keyPath} (${reason})`, { cause: error });
  }
  const mode = stat.mode & 0o777;
  const open = mode & (stat.uid === 0 ? 0o007 : 0o077);
  if (open === 0) return;
  const verb = open & 0o044 ? 'readable' : open & 0o022 ? 'writable' : 'accessible';
  const whom = open & 0o070 ? (open & 0o007 ? 'group/others' : 'its group') : 'others';
  throw new CaError(
    'CA_KEY_PERMISSIONS',
    `CA key ${keyPath} is ${verb} by ${whom} (mode 0${mode.toString(8).padStart(3, '0')}): run chmod 600 ${keyPath}`,
  );
}

/** Write `dir/name` via a temp file created with `mode` (never wider, even for a moment) + rename. */
export async function writeAtomic(dir: string, name: string, data: string, mode: number): Promise<void> {
  const temp = path.join(dir, `.${name}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', mode);
  try {
    try {
      await handle.chmod(mode); // the umask may have narrowed a .crt; a .key stays 0600 either way
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
export async function sweepTempFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return; // no directory yet, or unreadable: reading the CA files will say so
  }
  const temp = names.filter((name) => /^\.(ca|previous|cross|next)\.(crt|key)\..+\.tmp$/.test(name));
  await Promise.all(temp.map((name) => fs.rm(path.join(dir, name), { force: true }).catch(() => undefined)));
}

/** Persist the renames themselves; best effort, as some filesystems cannot fsync a directory. */
export async function syncDir(dir: string): Promise<void> {
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

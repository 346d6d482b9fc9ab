// `ca rotate` with a crash after every one of its writes (a step that throws, which is what a
// crash leaves on disk: nothing in rotateCa undoes a step): the CA directory always loads, as the
// old CA until the new key is in place and as the new one from then on, with no staged file left
// behind, and a rotation that stopped before the new key can simply be run again.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa } from '../../../src/tls/ca.ts';
import { CaError } from '../../../src/tls/errors.ts';
import { rotateCa } from '../../../src/tls/rotate.ts';

let root: string;
let n = 0;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pullthrough-rotate-crash-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** The steps of a rotation, in order, as rotateCa names them to `beforeStep`. */
async function stepNames(): Promise<string[]> {
  const dir = path.join(root, `names${++n}`);
  await loadOrCreateCa({ dir });
  const names: string[] = [];
  await rotateCa({ dir, beforeStep: (name) => void names.push(name) });
  return names;
}

const steps = await (async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pullthrough-rotate-names-'));
  try {
    return await stepNames();
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
})();

describe('a crash during ca rotate', () => {
  it('has the steps the crash window analysis is about', () => {
    expect(steps).toEqual([
      'previous.key',
      'previous.crt',
      'cross.crt',
      'next.key',
      'next.crt',
      'sync staged',
      'ca.key',
      'ca.crt',
      'sync renames',
    ]);
  });

  it.each(steps.map((name, index) => [index, name] as const))(
    'leaves a loadable CA when it stops before step %i (%s)',
    async (index, name) => {
      const dir = path.join(root, `crash${++n}`);
      const old = await loadOrCreateCa({ dir, passphrase: 'hunter2' });
      const crash = new Error(`crash before ${name}`);
      const failed = await rotateCa({
        dir,
        passphrase: 'hunter2',
        beforeStep: (step) => {
          if (step === name) throw crash;
        },
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failed).toBeInstanceOf(CaError);
      expect((failed as CaError).cause).toBe(crash);

      const loaded = await loadOrCreateCa({ dir, passphrase: 'hunter2' });
      expect(loaded.created).toBe(false);
      const pair = async () => ({
        cert: new crypto.X509Certificate(await fs.readFile(path.join(dir, 'ca.crt'))),
        key: crypto.createPrivateKey({
          key: await fs.readFile(path.join(dir, 'ca.key'), 'utf8'),
          passphrase: 'hunter2',
        }),
      });
      // On disk too, ca.crt and ca.key are one pair again, and no staged file is left.
      const { cert, key } = await pair();
      expect(cert.checkPrivateKey(key)).toBe(true);
      expect(cert.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(loaded.fingerprintSha256);
      const left = (await fs.readdir(dir)).filter((file) => file.startsWith('next.'));
      expect(left).toEqual([]);

      const keyReplaced = index > steps.indexOf('ca.key');
      if (keyReplaced) {
        // The new key was in place: the rotation is finished, and its overlap is on.
        expect(loaded.fingerprintSha256).not.toBe(old.fingerprintSha256);
        expect(loaded.overlap.state).toBe('active');
      } else {
        // Nothing replaced yet: the old CA, and `ca rotate` runs again to the end.
        expect(loaded.fingerprintSha256).toBe(old.fingerprintSha256);
        expect(loaded.overlap.state).not.toBe('active');
        const again = await rotateCa({ dir, passphrase: 'hunter2' });
        expect(again.previous.fingerprintSha256).toBe(old.fingerprintSha256);
        expect((await loadOrCreateCa({ dir, passphrase: 'hunter2' })).overlap.state).toBe('active');
      }
    },
  );
});

// A throwaway PKI made at run time for the fake upstream servers: its own CA (distinct from the
// proxy's) and leaf certificates for any host. Built with the project's own tls/ module.
import 'reflect-metadata';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateCa, type CertificateAuthority } from '../../src/tls/ca.ts';
import { issueLeaf } from '../../src/tls/leaf.ts';

export interface TestPki {
  readonly ca: CertificateAuthority;
  readonly caFile: string;
  leaf(host: string): Promise<{ cert: string; key: string }>;
}

let shared: Promise<TestPki> | undefined;

/** One upstream PKI per test file (module instance): making a CA costs a few ms. */
export function upstreamPki(): Promise<TestPki> {
  shared ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pullthrough-upstream-pki-'));
    const ca = await loadOrCreateCa({ dir, hostname: 'upstream-test' });
    return {
      ca,
      caFile: path.join(dir, 'ca.crt'),
      async leaf(host: string) {
        const leaf = await issueLeaf(ca, host);
        return { cert: leaf.certPem, key: leaf.keyPem };
      },
    };
  })();
  return shared;
}

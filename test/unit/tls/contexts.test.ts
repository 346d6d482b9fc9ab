// LeafContexts: real TLS handshakes with the issued contexts, one issuance per host under
// concurrency, no caching of failures, renewal at two thirds of the lifetime, LRU eviction.

import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa, type CertificateAuthority } from '../../../src/tls/ca.ts';
import { LeafContexts } from '../../../src/tls/contexts.ts';

const DAY_MS = 24 * 3_600_000;

let root: string;
let ca: CertificateAuthority;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'pullthrough-contexts-'));
  ca = await loadOrCreateCa({ dir: root });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** Listen on 127.0.0.1:0, run `body` with the port, then close the server. */
async function withServer(server: net.Server, body: (port: number) => Promise<void>): Promise<void> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await body((server.address() as net.AddressInfo).port);
  } finally {
    server.close();
    await once(server, 'close');
  }
}

/** Connect, wait for the handshake, and report what the client saw. */
async function handshake(
  options: tls.ConnectionOptions,
): Promise<{ authorized: boolean; altName: string | undefined }> {
  const socket = tls.connect(options);
  try {
    await once(socket, 'secureConnect');
    return { authorized: socket.authorized, altName: socket.getPeerCertificate().subjectaltname };
  } finally {
    socket.destroy();
  }
}

describe('LeafContexts', () => {
  it('serves a certificate the client accepts, chosen by SNI', async () => {
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
    await withServer(server, async (port) => {
      const seen = await handshake({
        host: '127.0.0.1',
        port,
        servername: 'registry.example',
        ca: ca.certPem,
      });
      expect(seen).toEqual({ authorized: true, altName: 'DNS:registry.example' });
    });
    expect(contexts.issued).toBe(1);
  });

  it('serves an IP literal on a socket handed over from elsewhere (as after CONNECT), without SNI', async () => {
    const contexts = new LeafContexts(ca);
    const secureContext = await contexts.get('127.0.0.1');
    const server = net.createServer((raw) => {
      const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
      socket.on('secure', () => socket.end());
      socket.on('error', () => socket.destroy());
    });
    await withServer(server, async (port) => {
      // Clients send no SNI for an IP address; Node then checks the IP against the iPAddress SAN.
      const seen = await handshake({ host: '127.0.0.1', port, ca: ca.certPem });
      expect(seen).toEqual({ authorized: true, altName: 'IP Address:127.0.0.1' });
    });
  });

  it('issues one certificate for concurrent first requests for one host', async () => {
    const contexts = new LeafContexts(ca);
    const hosts = [
      'registry.example',
      'Registry.Example',
      'registry.example.',
      ...Array.from({ length: 17 }, () => 'registry.example'),
    ];
    const results = await Promise.all(hosts.map((host) => contexts.get(host)));
    expect(contexts.issued).toBe(1);
    expect(new Set(results).size).toBe(1);
    expect(await contexts.get('registry.example')).toBe(results[0]);
    await contexts.get('other.example');
    expect(contexts.issued).toBe(2);
  });

  it('does not cache a failed issuance: the next request tries again', async () => {
    const { publicKey } = await crypto.webcrypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign', 'verify'],
    );
    let broken = true;
    // The same CA, except that while `broken` its key cannot sign (a public key).
    const flaky: CertificateAuthority = Object.create(ca, {
      privateKey: { get: () => (broken ? publicKey : ca.privateKey) },
    }) as CertificateAuthority;
    const contexts = new LeafContexts(flaky);

    const first = await Promise.allSettled([
      contexts.get('registry.example'),
      contexts.get('registry.example'),
    ]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(contexts.issued).toBe(0);

    broken = false;
    await expect(contexts.get('registry.example')).resolves.toBeDefined();
    expect(contexts.issued).toBe(1);
  });

  it('renews a context once two thirds of its lifetime have passed (30-day leaves: after 20 days)', async () => {
    let now = Date.now();
    const contexts = new LeafContexts(ca, { now: () => now });
    const first = await contexts.get('registry.example');

    now += 20 * DAY_MS - 1000;
    expect(await contexts.get('registry.example')).toBe(first);
    expect(contexts.issued).toBe(1);

    now += 2000;
    const renewed = await contexts.get('registry.example');
    expect(renewed).not.toBe(first);
    expect(contexts.issued).toBe(2);
    expect(await contexts.get('registry.example')).toBe(renewed);
    expect(contexts.issued).toBe(2);
  });

  it('forgets the least recently used host beyond `max`', async () => {
    const contexts = new LeafContexts(ca, { max: 2 });
    const a = await contexts.get('a.example');
    await contexts.get('b.example');
    expect(await contexts.get('a.example')).toBe(a); // a is now the most recent
    await contexts.get('c.example'); // evicts b
    expect(contexts.issued).toBe(3);
    expect(await contexts.get('a.example')).toBe(a);
    await contexts.get('b.example');
    expect(contexts.issued).toBe(4);
  });

  it('rejects a host it cannot certify without issuing anything', async () => {
    const contexts = new LeafContexts(ca);
    await expect(contexts.get('not a host')).rejects.toThrow(TypeError);
    expect(contexts.issued).toBe(0);
  });
});

// Not an open proxy: CONNECT only to allowed ports, never to link-local or metadata addresses
// (names are resolved and every address is checked), optional client networks and proxy
// authentication, and limits on connections, tunnels, headers and idle time.
//
// No packet may leave loopback even if the code under test is wrong: every test runs the proxy
// with an injected resolver (metadata.test → 169.254.169.254) and connectors that record and
// refuse any non-loopback address instead of connecting to it.
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { ProxyAgent, request } from 'undici';
import type { buildConnector } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { AppSeams } from '../../src/app.ts';
import type { ResolvedAddress } from '../../src/net/guard.ts';
import { isLoopback } from '../../src/net/networks.ts';
import { rawConnection, readHead, startProxy } from '../helpers/proxy.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

const NAMES: Record<string, ResolvedAddress[]> = {
  'metadata.test': [{ address: '169.254.169.254', family: 4 }],
  'dual.test': [
    { address: 'fd00:ec2::254', family: 6 },
    { address: '169.254.170.2', family: 4 },
  ],
  'localhost.test': [{ address: '127.0.0.1', family: 4 }],
};

/** Seams that make a wrong proxy fail the test instead of sending a packet off loopback. */
function loopbackOnly(): AppSeams & { readonly attempts: string[] } {
  const attempts: string[] = [];
  const refuse = (host: string) => {
    attempts.push(host);
    return new Error(`test connector: refused to connect to ${host}`);
  };
  return {
    attempts,
    resolve: (host) => {
      const known = NAMES[host];
      if (known) return Promise.resolve(known);
      return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    },
    connect: ({ host, port }) => {
      if (isLoopback(host)) return net.connect({ host, port });
      const socket = new net.Socket();
      process.nextTick(() => socket.destroy(refuse(host)));
      return socket;
    },
    wrapUpstreamConnector:
      (base: buildConnector.connector): buildConnector.connector =>
      (options, callback) => {
        if (!isLoopback(options.hostname.replace(/^\[|\]$/g, '')))
          return callback(refuse(options.hostname), null);
        base(options, callback);
      },
  };
}

async function connectStatus(
  port: number,
  target: string,
  headers = '',
): Promise<{ head: string; body: string }> {
  const socket = await rawConnection(port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${headers}\r\n`);
  const { head, rest } = await readHead(socket);
  socket.resume();
  let body = rest.toString();
  if (!head.startsWith('HTTP/1.1 200'))
    for await (const chunk of socket) body += (chunk as Buffer).toString();
  return { head, body };
}

describe('destinations', () => {
  it('refuses CONNECT to a port that is not allowed, and allows it once listed', async () => {
    const origin = await startFakeRegistry();
    const seams = loopbackOnly();
    const proxy = await startProxy({}, {}, seams);
    const refused = await connectStatus(proxy.port, origin.authority);
    expect(refused.head).toMatch(/^HTTP\/1\.1 403 /);
    expect(refused.body).toContain(`CONNECT to port ${origin.port} is not allowed (proxy.connectPorts)`);
    await proxy.waitForLog((l) => l.msg === 'tunnel refused: port not in proxy.connectPorts');
    expect(origin.requests).toHaveLength(0);

    const open = await startProxy({ proxy: { connectPorts: [origin.port] } }, {}, loopbackOnly());
    expect((await connectStatus(open.port, origin.authority)).head).toMatch(/^HTTP\/1\.1 200 /);
    expect(seams.attempts).toEqual([]);
  });

  it('refuses link-local and metadata destinations, by address and by what a name resolves to', async () => {
    const seams = loopbackOnly();
    const proxy = await startProxy({}, {}, seams);
    for (const target of [
      '169.254.169.254:443',
      '[fd00:ec2::254]:443',
      '[::ffff:169.254.169.254]:443',
      '[fe80::1]:443',
      '0.0.0.0:443',
      'metadata.test:443',
      'dual.test:443',
    ]) {
      const { head, body } = await connectStatus(proxy.port, target);
      expect(head, target).toMatch(/^HTTP\/1\.1 403 /);
      expect(body, target).toMatch(
        /may not be reached through this proxy: resolves to .*, a refused network/,
      );
    }
    const logged = proxy.logs.filter((l) => l.msg === 'tunnel refused');
    expect(logged.map((l) => l['destination'])).toContain('metadata.test:443');
    expect(seams.attempts).toEqual([]);
  });

  it('refuses plain-HTTP forwarding to a metadata address and to a port not allowed', async () => {
    const seams = loopbackOnly();
    const proxy = await startProxy({}, {}, seams);
    for (const [url, status] of [
      ['http://169.254.169.254/latest/meta-data/', 403],
      ['http://metadata.test/computeMetadata/v1/', 403],
      ['http://127.0.0.1:22/', 403],
    ] as const) {
      const socket = await rawConnection(proxy.port, `GET ${url} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const { head } = await readHead(socket);
      expect(head, url).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    }
    expect(seams.attempts).toEqual([]);
  });

  it('never follows an upstream redirect into a refused network', async () => {
    const upstream = await startFakeRegistry();
    const blob = upstream.addBlob(Buffer.from('secret of the metadata service'));
    upstream.redirectBlobsTo('http://metadata.test');
    const seams = loopbackOnly();
    const proxy = await startProxy({ registries: [upstream.authority] }, {}, seams);
    const res = await proxy.fetch(upstream.authority, `/v2/lib/app/blobs/${blob}`);
    expect(res.statusCode).toBe(502);
    const body = (await res.body.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.message).toContain('metadata.test');
    expect(seams.attempts).toEqual([]);
  });
});

describe('clients', () => {
  it('refuses clients outside proxy.allowClients with 403 and one log line', async () => {
    const origin = await startFakeRegistry();
    const seams = loopbackOnly();
    const opened: string[] = [];
    const proxy = await startProxy(
      { proxy: { allowClients: ['10.0.0.0/8'], connectPorts: [origin.port] } },
      {},
      {
        ...seams,
        connect: (options) => {
          opened.push(options.host);
          return seams.connect!(options);
        },
      },
    );
    const socket = await rawConnection(proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 403 /);
    // A refused client's CONNECT goes nowhere, even sent at once behind the connection.
    const eager = await rawConnection(proxy.port, `CONNECT ${origin.authority} HTTP/1.1\r\n\r\n`);
    eager.resume();
    await once(eager, 'close');
    await proxy.close();
    expect(opened).toEqual([]);
    expect(proxy.logs.filter((l) => l.msg === 'tunnel')).toEqual([]);
    await proxy.waitForLog(
      (l) => l.msg === 'client refused: not in proxy.allowClients' && l['client'] === '127.0.0.1',
    );

    const allowed = await startProxy({ proxy: { allowClients: ['127.0.0.0/8', '::1'] } }, {}, loopbackOnly());
    const ok = await rawConnection(allowed.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await readHead(ok)).head).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('asks for proxy credentials with 407, accepts the right ones, and keeps health and CA open', async () => {
    const upstream = await startFakeRegistry();
    const dir = await tempDir();
    const htpasswd = path.join(dir, 'users');
    await writeFile(htpasswd, `# users\nalice:${await bcrypt.hash('wonderland', 4)}\n`);
    const proxy = await startProxy(
      { registries: [upstream.authority], proxy: { htpasswd } },
      {},
      loopbackOnly(),
    );
    const basic = (user: string, pass: string) =>
      `Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}\r\n`;

    const none = await connectStatus(proxy.port, upstream.authority);
    expect(none.head).toMatch(/^HTTP\/1\.1 407 /);
    expect(none.head).toMatch(/\r\nProxy-Authenticate: Basic realm="pullthrough"/);
    // No credentials at all: one info line, so an operator sees which client lacks them.
    expect(await proxy.waitForLog((l) => l.msg === 'proxy authentication required')).toMatchObject({
      level: 30,
      target: upstream.authority,
      client: '127.0.0.1',
    });
    const wrong = await connectStatus(proxy.port, upstream.authority, basic('alice', 'nope'));
    expect(wrong.head).toMatch(/^HTTP\/1\.1 407 /);
    expect(await proxy.waitForLog((l) => l.msg === 'proxy authentication failed')).toMatchObject({
      level: 40,
      user: 'alice',
      target: upstream.authority,
    });
    const unknown = await connectStatus(proxy.port, upstream.authority, basic('mallory', 'wonderland'));
    expect(unknown.head).toMatch(/^HTTP\/1\.1 407 /);
    const forward = await rawConnection(proxy.port, 'GET http://127.0.0.1:80/ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await readHead(forward)).head).toMatch(/^HTTP\/1\.1 407 /);

    // undici sends the credentials of the proxy URL on CONNECT, as docker, podman and containerd do.
    const agent = new ProxyAgent({
      uri: `http://alice:wonderland@127.0.0.1:${proxy.port}`,
      requestTls: { ca: [proxy.app.ca.certPem] },
    });
    onTestFinished(() => agent.close());
    const blob = upstream.addBlob(Buffer.from('layer'));
    const res = await request(`https://${upstream.authority}/v2/lib/app/blobs/${blob}`, {
      dispatcher: agent,
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('layer');

    for (const local of ['/', '/healthz', '/ca.crt']) {
      const socket = await rawConnection(proxy.port, `GET ${local} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect((await readHead(socket)).head, local).toMatch(/^HTTP\/1\.1 200 /);
    }
  });

  it('refuses to start on an htpasswd line that is not a bcrypt hash', async () => {
    const dir = await tempDir();
    const htpasswd = path.join(dir, 'users');
    await writeFile(htpasswd, 'bob:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\n');
    await expect(startProxy({ proxy: { htpasswd } })).rejects.toThrow(
      `${htpasswd} line 1: expected user:bcrypt-hash (make one with: htpasswd -nB user)`,
    );
  });
});

describe('limits', () => {
  it('answers 503 past limits.maxConnections and serves again once a connection closes', async () => {
    const proxy = await startProxy({ limits: { maxConnections: 2 } }, {}, loopbackOnly());
    const first = await rawConnection(proxy.port);
    await rawConnection(proxy.port);
    const third = await rawConnection(proxy.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await readHead(third)).head).toMatch(/^HTTP\/1\.1 503 /);
    await proxy.waitForLog((l) => l.msg === 'connection refused: limits.maxConnections');
    first.destroy();
    // The proxy counts the connection closed when its own side sees the FIN: retry until then.
    await until(async () => {
      const again = await rawConnection(proxy.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      return /^HTTP\/1\.1 200 /.test((await readHead(again)).head);
    });
  });

  it('answers 503 past limits.maxTunnels', async () => {
    const origin = await startFakeRegistry();
    const proxy = await startProxy(
      { limits: { maxTunnels: 1 }, proxy: { connectPorts: [origin.port] } },
      {},
      loopbackOnly(),
    );
    expect((await connectStatus(proxy.port, origin.authority)).head).toMatch(/^HTTP\/1\.1 200 /);
    const second = await connectStatus(proxy.port, origin.authority);
    expect(second.head).toMatch(/^HTTP\/1\.1 503 /);
    expect(second.body).toContain('too many tunnels');
    await proxy.waitForLog((l) => l.msg === 'tunnel refused: limits.maxTunnels');
  });

  it('answers 431 past limits.maxHeaders and limits.maxHeaderSize, on the proxy and inside intercepted TLS', async () => {
    const upstream = await startFakeRegistry();
    const proxy = await startProxy(
      { registries: [upstream.authority], limits: { maxHeaders: 8, maxHeaderSize: '2KiB' } },
      {},
      loopbackOnly(),
    );
    const many = Array.from({ length: 9 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    const counted = await rawConnection(proxy.port, `GET / HTTP/1.1\r\nHost: x\r\n${many}\r\n`);
    expect((await readHead(counted)).head).toMatch(/^HTTP\/1\.1 431 /);
    await proxy.waitForLog((l) => l.msg === 'request refused: limits.maxHeaderSize or limits.maxHeaders');
    const big = await rawConnection(
      proxy.port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`,
    );
    expect((await readHead(big)).head).toMatch(/^HTTP\/1\.1 431 /);

    const headers = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`x-h${i}`, String(i)]));
    const inside = await proxy.fetch(upstream.authority, '/v2/', { headers });
    expect(inside.statusCode).toBe(431);
    await inside.body.dump();
  });

  it('closes a client that sends its headers too slowly (408)', async () => {
    const proxy = await startProxy({ limits: { headersTimeout: '300ms' } }, {}, loopbackOnly());
    const socket = await rawConnection(proxy.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const started = performance.now();
    const { head } = await readHead(socket);
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    await proxy.waitForLog((l) => l.msg === 'request refused: limits.headersTimeout');
  });

  it('closes a tunnel that stays idle past limits.tunnelIdleTimeout', async () => {
    const origin = await startFakeRegistry();
    const proxy = await startProxy(
      { limits: { tunnelIdleTimeout: '200ms' }, proxy: { connectPorts: [origin.port] } },
      {},
      loopbackOnly(),
    );
    const socket = await rawConnection(proxy.port, `CONNECT ${origin.authority} HTTP/1.1\r\n\r\n`);
    expect((await readHead(socket)).head).toMatch(/^HTTP\/1\.1 200 /);
    socket.resume();
    await once(socket, 'close');
    const line = await proxy.waitForLog((l) => l.msg === 'tunnel');
    expect(line['established']).toBe(true);
  });
});

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 50; i += 1) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error('condition not met');
}

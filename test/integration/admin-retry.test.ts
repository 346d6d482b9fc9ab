// The admin client while a cluster's cache bookkeeper changes hands: a fake admin API on port 0
// answers 503 + Retry-After (as cluster/admin.ts does) before 200. A repeatable request waits
// and succeeds, a stubborn 503 fails after twice the first Retry-After, and a request that is
// not repeatable (an eviction pass) or a 503 without Retry-After fails at once. Then the CLI
// spawned as an operator runs it: one stderr line, the listing, exit 0.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AdminClient } from '../../src/cli/admin-client.ts';
import { runCli } from '../helpers/cli.ts';

const BUSY = 'no cache bookkeeper can answer: the book lease is vacant; retry then';

/** An admin API answering each request with the next of `answers` (the last one repeats). */
async function fakeAdmin(answers: ReadonlyArray<(res: ServerResponse) => void>) {
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    answers[Math.min(requests.length, answers.length) - 1]!(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  (res: ServerResponse) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
const busy = (retryAfter?: string) =>
  json(503, { error: BUSY }, retryAfter === undefined ? {} : { 'retry-after': retryAfter });

/** A client whose sleeps only move a clock forward, and what it waited and said. */
function client(url: string) {
  let clock = 1_000_000;
  const waits: number[] = [];
  const notices: string[] = [];
  const admin = new AdminClient(url, 'token', {
    now: () => clock,
    sleep: (ms) => {
      waits.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    notice: (line) => notices.push(line),
  });
  return { admin, waits, notices };
}

describe('the admin client while the bookkeeper changes hands', () => {
  it('waits Retry-After and sends a GET again, saying so once', async () => {
    const server = await fakeAdmin([busy('1'), json(200, { registries: [] })]);
    const { admin, waits, notices } = client(server.url);
    await expect(admin.call('GET', '/admin/images')).resolves.toEqual({ registries: [] });
    expect(server.requests).toEqual(['GET /admin/images', 'GET /admin/images']);
    expect(waits).toEqual([1000]);
    expect(notices).toEqual(['the cache bookkeeper is changing hands; retrying for up to 2 s']);
  });

  it("gives up after twice the first Retry-After with the server's message", async () => {
    const server = await fakeAdmin([busy('3')]);
    const { admin, waits, notices } = client(server.url);
    await expect(admin.call('DELETE', '/admin/cache', { repeatable: true })).rejects.toThrow(
      `${server.url}/admin/cache: 503 ${BUSY}`,
    );
    expect(waits).toEqual([3000, 3000]);
    expect(server.requests).toHaveLength(3);
    expect(notices).toHaveLength(1);
  });

  it('does not repeat a request that is not repeatable, nor a 503 without Retry-After', async () => {
    const evict = await fakeAdmin([busy('1'), json(200, {})]);
    const first = client(evict.url);
    await expect(first.admin.call('POST', '/admin/evict')).rejects.toThrow(`503 ${BUSY}`);
    expect(evict.requests).toEqual(['POST /admin/evict']);
    expect(first.notices).toEqual([]);

    const readOnly = await fakeAdmin([busy(), json(200, {})]);
    const second = client(readOnly.url);
    await expect(second.admin.call('GET', '/admin/cache')).rejects.toThrow(`503 ${BUSY}`);
    expect(readOnly.requests).toHaveLength(1);

    const failing = await fakeAdmin([
      json(500, { error: 'disk on fire' }, { 'retry-after': '1' }),
      json(200, {}),
    ]);
    const third = client(failing.url);
    await expect(third.admin.call('GET', '/admin/cache')).rejects.toThrow('500 disk on fire');
    expect(failing.requests).toHaveLength(1);
  });

  it('`pullthrough cache ls` waits out one 503 and lists; `cache gc` fails at once', async () => {
    const server = await fakeAdmin([busy('1'), json(200, { registries: [] })]);
    const started = Date.now();
    const ls = await runCli(['cache', 'ls', '--json', '--server', server.url, '--token', 't']).exited;
    expect(ls.stderr).toBe('pullthrough: the cache bookkeeper is changing hands; retrying for up to 2 s\n');
    expect(JSON.parse(ls.stdout)).toEqual({ registries: [] });
    expect(ls.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(server.requests).toEqual(['GET /admin/images', 'GET /admin/images']);

    const gcServer = await fakeAdmin([busy('1'), json(200, {})]);
    const gc = await runCli(['cache', 'gc', '--server', gcServer.url, '--token', 't']).exited;
    expect(gc.stderr).toBe(`pullthrough: ${gcServer.url}/admin/evict: 503 ${BUSY}\n`);
    expect(gc.code).toBe(1);
    expect(gcServer.requests).toEqual(['POST /admin/evict']);
  });
});

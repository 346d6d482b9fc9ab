// The admin requests a replica sends on to the bookkeeper (cluster/admin.ts) and how the admin
// handler answers with them: who is asked (the lease's member, unless vacant, this replica, or
// without a heartbeat), what goes over the hop (the secret, never the caller's token), what comes
// back (status, headers, body), and the 503 that says why when nobody can answer.
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createAdminHandler, type AdminOptions } from '../../../src/admin/handler.ts';
import type { BlobStore } from '../../../src/cache/blobs.ts';
import { AdminForward, BookkeeperUnavailableError } from '../../../src/cluster/admin.ts';
import { startEndpoint } from '../../../src/cluster/endpoint.ts';
import type { Member } from '../../../src/cluster/members.ts';
import { createLogger } from '../../../src/log.ts';

const ME: Member = { id: 'r1', url: 'http://127.0.0.1:1', since: 0 };
const TOKEN = 'admin-token-0123456789';
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A server on port 0 playing the bookkeeper's internal endpoint; records what it was asked. */
async function keeperServer(id = 'r2') {
  const seen: IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    res.writeHead(207, { 'content-type': 'application/json', 'x-answer': 'kept' }).end('{"from":"keeper"}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const member: Member = { id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, since: 0 };
  return { member, seen };
}

/** Just the two Redis commands the forward uses: the lease and the heartbeats. */
function redisWith(lease: Member | null | Error, heartbeat: number | null = null): Redis {
  return {
    get: () =>
      lease instanceof Error ? Promise.reject(lease) : Promise.resolve(lease && JSON.stringify(lease)),
    zscore: () => Promise.resolve(heartbeat === null ? null : String(heartbeat)),
  } as unknown as Redis;
}

function forwardOf(redis: Redis, members: Member[] = []): AdminForward {
  const forward = new AdminForward({
    redis,
    prefix: 'p:',
    me: ME,
    secret: 'the-secret',
    leaseTtlMs: 3000,
    members: () => members,
  });
  closers.push(() => forward.close());
  return forward;
}

/** A replica's admin API on port 0 that keeps no index and sends cache-wide paths to `forward`. */
async function replica(forward: AdminForward, extra: Partial<AdminOptions> = {}) {
  const handler = createAdminHandler({
    token: TOKEN,
    control: () => Promise.resolve(undefined),
    forward: { send: (req, res) => forward.send(req, res), retryAfterSeconds: 3 },
    ...extra,
  });
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return async (method: 'GET' | 'DELETE', path: string, token = TOKEN) => {
    const res = await request(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };
}

describe('admin requests sent on to the bookkeeper', () => {
  it('sends method, path and query with the cluster secret, and returns the answer unchanged', async () => {
    const { member, seen } = await keeperServer();
    const ask = await replica(forwardOf(redisWith(member), [member]));
    const answer = await ask('DELETE', '/admin/images?registry=r.test&repository=a');
    expect(answer.status).toBe(207);
    expect(answer.text).toBe('{"from":"keeper"}');
    expect(answer.headers['x-answer']).toBe('kept');
    expect(answer.headers['x-pullthrough-bookkeeper']).toBe('r2');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('DELETE');
    expect(seen[0]!.url).toBe('/cluster/v1/admin/images?registry=r.test&repository=a');
    expect(seen[0]!.headers.authorization).toBe('Bearer the-secret');
    expect(seen[0]!.headers['x-pullthrough-forwarded-by']).toBe('r1');
  });

  it('never sends an unauthenticated request, nor a per-replica one', async () => {
    const { member, seen } = await keeperServer();
    const stats = () => Promise.resolve({ mine: true });
    const ask = await replica(forwardOf(redisWith(member), [member]), { stats });
    expect((await ask('GET', '/admin/images', 'wrong-token')).status).toBe(401);
    const own = await ask('GET', '/admin/stats');
    expect([own.status, own.text]).toEqual([200, '{"mine":true}\n']);
    expect(seen).toHaveLength(0);
  });

  it.each([
    ['the lease is vacant', redisWith(null), /the book lease is vacant/],
    [
      'Redis is down',
      redisWith(new Error('Connection is closed.')),
      /Redis cannot say .*Connection is closed/,
    ],
    ['this replica holds the lease', redisWith(ME), /this replica has just taken the books/],
    [
      'the holder stopped its heartbeats',
      redisWith({ ...ME, id: 'r9' }, Date.now() - 1),
      /r9 has stopped its heartbeats/,
    ],
  ])('answers 503 with why and Retry-After when %s', async (_, redis, why) => {
    const ask = await replica(forwardOf(redis));
    const answer = await ask('GET', '/admin/cache');
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('3');
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    const { error } = JSON.parse(answer.text) as { error: string };
    expect(error).toMatch(/^no cache bookkeeper can answer: /);
    expect(error).toMatch(why);
    expect(error).toMatch(/takes the books within cluster\.leaseTtl \(3 s\) on its own, so retry then$/);
  });

  it('says the bookkeeper does not answer when its endpoint is gone', async () => {
    const { member } = await keeperServer();
    for (const close of closers.splice(0)) await close();
    const forward = forwardOf(redisWith(member), [member]);
    const refused = forward.send({ url: '/admin/images', method: 'GET' } as IncomingMessage, {} as never);
    await expect(refused).rejects.toThrow(BookkeeperUnavailableError);
    await expect(refused).rejects.toThrow(
      /the bookkeeper r2 at http:\/\/127\.0\.0\.1:\d+ does not answer \(ECONNREFUSED\)/,
    );
  });

  it('asks Redis for a holder the last heartbeat did not list yet', async () => {
    const { member, seen } = await keeperServer();
    const ask = await replica(forwardOf(redisWith(member, Date.now() + 60_000), []));
    expect((await ask('GET', '/admin/cache')).status).toBe(207);
    expect(seen).toHaveLength(1);
  });
});

describe('the internal endpoint’s admin paths', () => {
  async function endpoint(admin: ((req: IncomingMessage, res: http.ServerResponse) => void) | undefined) {
    const started = await startEndpoint('127.0.0.1', 0, {
      secret: 'the-secret',
      localFill: () => undefined,
      store: {} as BlobStore,
      members: () => [],
      admin: () => admin,
      log: createLogger('silent'),
    });
    closers.push(() => started.close());
    return (path: string, secret = 'the-secret') =>
      request(`http://127.0.0.1:${started.address.port}${path}`, {
        headers: { authorization: `Bearer ${secret}` },
      }).then(async (res) => ({ status: res.statusCode, text: await res.body.text() }));
  }

  it('hands /cluster/v1/admin/… to the admin API as /admin/…, with the secret only', async () => {
    const urls: string[] = [];
    const ask = await endpoint((req, res) => {
      urls.push(req.url!);
      res.end('{}');
    });
    expect((await ask('/cluster/v1/admin/images?registry=r.test')).status).toBe(200);
    expect((await ask('/cluster/v1/admin/images', TOKEN)).status).toBe(401);
    expect(urls).toEqual(['/admin/images?registry=r.test']);
  });

  it('answers 503 in JSON while no admin API is served there', async () => {
    const ask = await endpoint(undefined);
    const answer = await ask('/cluster/v1/admin/cache');
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.text)).toEqual({
      error: 'this replica serves no admin API (admin.token unset here, or still starting)',
    });
  });
});

// The replica that holds a fill's lease killed (SIGKILL) in the middle of the fill: the client
// waiting on another replica still gets the whole blob, verified (that replica takes the lease
// over once it expires and fetches the rest upstream from the byte it had), and what the dead
// replica had written is never published.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MAIN } from '../helpers/cli.ts';
import { upstreamPki } from '../helpers/pki.ts';
import { startProxy } from '../helpers/proxy.ts';
import { hasRedisServer, startRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

const SECRET = 'cluster-test-secret-0123456789';

/** A replica in a child process, so that it can die as a process does; resolves once it listens. */
async function childReplica(configFile: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let buffered = '';
  for (;;) {
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
    buffered += chunk.toString();
    const listening = buffered
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line['msg'] === 'listening');
    if (listening) {
      child.stdout.resume();
      return { child, port: listening['port'] as number };
    }
  }
}

describe.skipIf(!(await hasRedisServer()))('cluster takeover (needs redis-server)', () => {
  it('completes the waiters of a replica killed mid-fill, and keeps nothing partial', async () => {
    const upstream = await startFakeRegistry();
    const redis = await startRedis();
    const pki = await upstreamPki();
    const dir = await tempDir();
    const cacheDir = path.join(dir, 'cache');
    const content = randomBytes(4 * 1024 * 1024 + 3);
    const digest = upstream.addBlob(content);
    const blobPath = `/v2/team/app/blobs/${digest}`;
    const release = upstream.holdBlobs();

    const configFile = path.join(dir, 'owner.yaml');
    await writeFile(
      configFile,
      [
        'listen: 127.0.0.1:0',
        `registries: ["${upstream.authority}"]`,
        `upstream: {caFiles: ["${pki.caFile}"]}`,
        `cache: {dir: "${cacheDir}"}`,
        `cluster: {redis: "${redis.url}", secret: "${SECRET}", id: owner, listen: "127.0.0.1:0", leaseTtl: 1s, heartbeat: 100ms}`,
        '',
      ].join('\n'),
    );
    const owner = await childReplica(configFile);
    const ca = await readFile(path.join(dir, 'ca', 'ca.crt'), 'utf8');
    const ownerClient = new ProxyAgent({ uri: `http://127.0.0.1:${owner.port}`, requestTls: { ca: [ca] } });
    onTestFinished(() => ownerClient.destroy());

    // The owner takes the lease and starts the fill: upstream sends half, then holds.
    const first = await request(`https://${upstream.authority}${blobPath}`, { dispatcher: ownerClient });
    expect(first.statusCode).toBe(200);
    first.body.resume();
    first.body.on('error', () => undefined);

    // A waiter on another replica: headers at once, bytes streamed from the owner.
    const waiter = await startProxy({
      registries: [upstream.authority],
      cache: { dir: cacheDir },
      cluster: { redis: redis.url, secret: SECRET, id: 'waiter', listen: '127.0.0.1:0', leaseTtl: '1s' },
    });
    const res = await waiter.fetch(upstream.authority, blobPath);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(content.length));
    const chunks: Buffer[] = [];
    const reader = res.body[Symbol.asyncIterator]();
    const firstChunk = await reader.next();
    chunks.push(firstChunk.value as Buffer);
    expect(upstream.requests.filter((r) => r.method === 'GET' && r.path === blobPath)).toHaveLength(1);

    // The owner dies mid-fill; upstream is free again for whoever takes over.
    const exited = once(owner.child, 'exit');
    owner.child.kill('SIGKILL');
    await exited;
    release();
    for (let next = await reader.next(); !next.done; next = await reader.next())
      chunks.push(next.value as Buffer);
    const body = Buffer.concat(chunks);
    expect(body.length).toBe(content.length);
    expect(sha256(body)).toBe(digest);
    await waiter.waitForLog((line) => line.msg === 'cluster fill taken over: continuing from upstream');

    // The rest came from upstream with a Range from where the stream broke; the whole is stored.
    const gets = upstream.requests.filter((r) => r.method === 'GET' && r.path === blobPath);
    expect(gets).toHaveLength(2);
    expect(gets[1]!.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
    await waiter.app.fills.idle();
    const hex = digest.slice('sha256:'.length);
    const stored = await readFile(path.join(cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex));
    expect(sha256(stored)).toBe(digest);
    const again = await waiter.fetch(upstream.authority, blobPath);
    expect(again.headers['x-cache']).toBe('HIT');
    await again.body.dump();
  });
});

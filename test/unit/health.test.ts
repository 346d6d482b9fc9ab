import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Health } from '../../src/health.ts';
import { createLocalHandler, type Readiness } from '../../src/local.ts';

async function readyz(readiness: () => Readiness): Promise<[number, string]> {
  const server = createServer(createLocalHandler('pem', { readiness })).listen(0, '127.0.0.1');
  onTestFinished(() => void server.close());
  await once(server, 'listening');
  const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
  return [res.statusCode, await res.body.text()];
}

describe('health', () => {
  it('says ready, degraded with a read-only cache, and not ready (503) once closing', async () => {
    const health = new Health(pino({ level: 'silent' }), '/nonexistent');
    expect(await readyz(health.readiness)).toEqual([200, 'ready\n']);
    health.cacheReadOnly('cache directory /c is read-only');
    expect(await readyz(health.readiness)).toEqual([
      200,
      'ready (degraded: cache directory /c is read-only)\n',
    ]);
    health.closing();
    expect(await readyz(health.readiness)).toEqual([503, 'not ready: shutting down\n']);
  });

  it('counts a failed cache write as degraded, whatever error wraps it', () => {
    const health = new Health(pino({ level: 'silent' }), '/nonexistent');
    health.cacheWriteFailed(Object.assign(new Error('no space'), { code: 'ENOSPC' }), { path: '/c/tmp/x' });
    expect(health.readiness().degraded).toEqual(['cache writes failing (ENOSPC): pulls are served uncached']);
  });
});

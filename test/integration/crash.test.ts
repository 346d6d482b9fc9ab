// A proxy killed (SIGKILL) in the middle of a fill leaves a temp file and no blob; after a
// restart the temp file is swept and the blob is fetched again, never served half.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ProxyAgent, request } from 'undici';
import { describe, expect, it, onTestFinished } from 'vitest';
import { upstreamPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startFakeRegistry } from '../helpers/upstream.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

async function serve(
  configFile: string,
): Promise<{ child: ChildProcess; port: number; lines: Array<Record<string, unknown>> }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  let port: number | undefined;
  while (port === undefined) {
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) {
      const line = JSON.parse(part) as Record<string, unknown>;
      lines.push(line);
      if (line['msg'] === 'listening') port = line['port'] as number;
    }
  }
  child.stdout.resume();
  return { child, port, lines };
}

describe('crash mid-fill', () => {
  it('leaves nothing that is served after a restart', async () => {
    const upstream = await startFakeRegistry();
    const content = randomBytes(6 * 1024 * 1024);
    const digest = upstream.addBlob(content);
    const release = upstream.holdBlobs();
    const pki = await upstreamPki();
    const dir = await tempDir();
    const configFile = path.join(dir, 'config.yaml');
    await writeFile(
      configFile,
      `listen: 127.0.0.1:0\nregistries: ["${upstream.authority}"]\nupstream: {caFiles: ["${pki.caFile}"]}\n`,
    );
    const blobPath = `/v2/x/blobs/${digest}`;

    const first = await serve(configFile);
    const ca = await readFile(path.join(dir, 'ca', 'ca.crt'), 'utf8');
    const agent1 = new ProxyAgent({ uri: `http://127.0.0.1:${first.port}`, requestTls: { ca: [ca] } });
    onTestFinished(() => agent1.destroy());
    const res = await request(`https://${upstream.authority}${blobPath}`, { dispatcher: agent1 });
    expect(res.statusCode).toBe(200);
    res.body.on('error', () => undefined);
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    release();

    expect((await readdir(path.join(dir, 'cache', 'tmp'))).length).toBe(1);
    expect(await readdir(path.join(dir, 'cache', 'blobs'))).toEqual([]);

    const second = await serve(configFile);
    expect(second.lines.find((l) => l['msg'] === 'cache ready')).toMatchObject({ sweptTempFiles: 1 });
    const agent2 = new ProxyAgent({ uri: `http://127.0.0.1:${second.port}`, requestTls: { ca: [ca] } });
    onTestFinished(() => agent2.destroy());
    const again = await request(`https://${upstream.authority}${blobPath}`, { dispatcher: agent2 });
    expect(again.headers['x-cache']).toBe('MISS');
    const hash = createHash('sha256');
    for await (const chunk of again.body) hash.update(chunk as Buffer);
    expect(`sha256:${hash.digest('hex')}`).toBe(digest);
    expect(upstream.hits('GET', blobPath)).toBe(2);
    second.child.kill('SIGTERM');
    expect((await once(second.child, 'exit'))[0]).toBe(0);
  });
});

// Everything the scenarios run against, made on loopback in one temp directory and torn down at
// the end: an upstream PKI (its own CA, one leaf for 127.0.0.1), the blob files, nginx in its two
// roles (nginx.ts) and pullthrough children that intercept nginx's upstream port.
import 'reflect-metadata';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateCa } from '../../src/tls/ca.ts';
import { issueLeaf } from '../../src/tls/leaf.ts';
import { writeBlob, type Blob } from './blob.ts';
import type { Counts } from './harness.ts';
import { startNginx, type Nginx } from './nginx.ts';
import { startProxyChild, type ProxyChild } from './proxy.ts';

export interface World {
  readonly counts: Counts;
  /** The blob of the throughput scenarios (1 GiB, quick 256 MiB). */
  readonly blob: Blob;
  readonly nginx: Nginx;
  readonly upstreamCaFile: string;
  /** `https://<authority>/v2/bench/blobs/<digest>`. */
  blobUrl(authority: string, blob: Blob): string;
  /** Another blob of `size` bytes (each call a new digest, so never in any cache). */
  newBlob(size: number): Promise<Blob>;
  /** A pullthrough child with its own empty cache; stopped by `close` if not before. */
  startProxy(name: string): Promise<ProxyChild & { readonly cacheDir: string }>;
  close(): Promise<void>;
}

export async function makeWorld(options: {
  counts: Counts;
  blobSize: number;
  cpuProfDir?: string | undefined;
}): Promise<World> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pullthrough-bench-'));
  const closers: Array<() => Promise<void>> = [() => rm(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  try {
    const ca = await loadOrCreateCa({ dir: path.join(dir, 'upstream-ca'), hostname: 'bench-upstream' });
    const leaf = await issueLeaf(ca, '127.0.0.1');
    const cert = path.join(dir, 'upstream.crt');
    const key = path.join(dir, 'upstream.key');
    await writeFile(cert, leaf.certPem);
    await writeFile(key, leaf.keyPem, { mode: 0o600 });
    const blobDir = path.join(dir, 'blobs');
    await mkdir(blobDir);
    const blob = await writeBlob(blobDir, options.blobSize);
    const nginx = await startNginx({ dir, blobDir, cert, key });
    closers.push(() => nginx.stop());
    const upstreamCaFile = path.join(dir, 'upstream-ca', 'ca.crt');
    let proxies = 0;
    return {
      counts: options.counts,
      blob,
      nginx,
      upstreamCaFile,
      blobUrl: (authority, { digest }) => `https://${authority}/v2/bench/blobs/${digest}`,
      newBlob: (size) => writeBlob(blobDir, size),
      async startProxy(name) {
        const cacheDir = path.join(dir, `cache-${++proxies}`);
        const proxy = await startProxyChild({
          dir,
          name: `${name}-${proxies}`,
          caDir: path.join(dir, 'proxy-ca'),
          cacheDir,
          registry: nginx.upstream,
          upstreamCaFile,
          cpuProfDir: options.cpuProfDir,
        });
        const stop = async () => {
          await proxy.stop();
          await rm(cacheDir, { recursive: true, force: true });
        };
        closers.push(stop);
        return { ...proxy, cacheDir, stop };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

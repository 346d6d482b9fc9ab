// Everything the scenarios run against, made on loopback in one temp directory and torn down at
// the end: an upstream PKI (its own CA, leaves for 127.0.0.1 and the alias addresses), the blob
// and manifest files, nginx in its two roles (nginx.ts) and pullthrough children that intercept
// nginx's upstream port (or what a scenario asks for).
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateCa } from '../../src/tls/ca.ts';
import { issueLeaf } from '../../src/tls/leaf.ts';
import { writeBlob, type Blob } from './blob.ts';
import type { Counts } from './harness.ts';
import { startNginx, type Nginx } from './nginx.ts';
import { startProxyChild, type ProxyChild } from './proxy.ts';

/** Loopback addresses besides 127.0.0.1 where the upstream also listens: never-seen hosts. */
const ALIASES = 40;

export interface Manifest {
  readonly digest: string;
  readonly content: Buffer;
}

export interface ProxyExtras {
  /** Intercepted `host:port`s; default: the upstream's. */
  readonly registries?: readonly string[];
  readonly connectPorts?: readonly number[];
  /** A cache directory the caller made and removes; default: a new empty one, removed at stop. */
  readonly cacheDir?: string;
  /** More config sections and environment (storage.type s3 and its AWS keys). */
  readonly config?: Readonly<Record<string, unknown>>;
  readonly env?: Readonly<Record<string, string>>;
  /** Another build's dist/main.js to run instead of this checkout's. */
  readonly main?: string;
}

export interface World {
  /** The run's temp directory, removed by `close`: scenarios may keep their own files here. */
  readonly dir: string;
  readonly counts: Counts;
  /** The blob of the throughput scenarios (1 GiB, quick 256 MiB). */
  readonly blob: Blob;
  readonly nginx: Nginx;
  readonly upstreamCaFile: string;
  /** `https://<authority>/v2/bench/blobs/<digest>`. */
  blobUrl(authority: string, blob: Blob): string;
  /** Another blob of `size` bytes (each call a new digest, so never in any cache). */
  newBlob(size: number): Promise<Blob>;
  /** `https://<authority>/v2/bench/manifests/<digest>`. */
  manifestUrl(authority: string, manifest: Manifest): string;
  /** An OCI image manifest naming `layers` blobs, served by the upstream by its digest. */
  newManifest(layers: readonly Blob[]): Promise<Manifest>;
  /** A pullthrough child, by default with its own empty cache; stopped by `close` if not before. */
  startProxy(name: string, extras?: ProxyExtras): Promise<ProxyChild & { readonly cacheDir: string }>;
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
    const tlsFiles = async (address: string) => {
      const leaf = await issueLeaf(ca, address);
      const cert = path.join(dir, `upstream-${address}.crt`);
      const key = path.join(dir, `upstream-${address}.key`);
      await writeFile(cert, leaf.certPem);
      await writeFile(key, leaf.keyPem, { mode: 0o600 });
      return { cert, key };
    };
    const aliases = [];
    for (let i = 2; i < 2 + ALIASES; i++) {
      const address = `127.0.0.${i}`;
      aliases.push({ address, ...(await tlsFiles(address)) });
    }
    const blobDir = path.join(dir, 'blobs');
    const manifestDir = path.join(dir, 'manifests');
    await mkdir(blobDir);
    await mkdir(manifestDir);
    const blob = await writeBlob(blobDir, options.blobSize);
    const nginx = await startNginx({
      dir,
      blobDir,
      manifestDir,
      ...(await tlsFiles('127.0.0.1')),
      aliases,
    });
    closers.push(() => nginx.stop());
    const upstreamCaFile = path.join(dir, 'upstream-ca', 'ca.crt');
    let proxies = 0;
    return {
      dir,
      counts: options.counts,
      blob,
      nginx,
      upstreamCaFile,
      blobUrl: (authority, { digest }) => `https://${authority}/v2/bench/blobs/${digest}`,
      newBlob: (size) => writeBlob(blobDir, size),
      manifestUrl: (authority, { digest }) => `https://${authority}/v2/bench/manifests/${digest}`,
      async newManifest(layers) {
        const descriptor = (mediaType: string, { digest, size }: { digest: string; size: number }) => ({
          mediaType,
          digest,
          size,
        });
        const config = Buffer.from(
          JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: Math.random() }),
        );
        const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
        const content = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: descriptor('application/vnd.oci.image.config.v1+json', {
              digest: configDigest,
              size: config.length,
            }),
            layers: layers.map((layer) => descriptor('application/vnd.oci.image.layer.v1.tar+gzip', layer)),
          }),
        );
        const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
        await writeFile(path.join(manifestDir, digest), content);
        return { digest, content };
      },
      async startProxy(name, extras = {}) {
        const n = ++proxies;
        const ownCache = extras.cacheDir === undefined;
        const cacheDir = extras.cacheDir ?? path.join(dir, `cache-${n}`);
        const proxy = await startProxyChild({
          dir,
          name: `${name}-${n}`,
          caDir: path.join(dir, 'proxy-ca'),
          cacheDir,
          registries: extras.registries ?? [nginx.upstream],
          connectPorts: extras.connectPorts,
          upstreamCaFile,
          cpuProfDir: options.cpuProfDir,
          config: extras.config,
          env: extras.env,
          main: extras.main,
        });
        const stop = async () => {
          await proxy.stop();
          if (ownCache) await rm(cacheDir, { recursive: true, force: true });
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

// Everything the skopeo scenarios run against, on loopback in one temp directory: names in
// /etc/hosts, a PKI of their own (a CA and one leaf per name, made with pullthrough's own tls/
// code as world.ts does), the upstream distribution registry with the test images pushed, the
// reference distribution mirror in front of it, and pullthrough children that intercept the
// upstream. `close()` stops every process and removes the names and the directory again.
//
// Names, not IP literals: Go clients never send loopback IPs or `localhost` through a proxy.
// The addresses 127.0.0.51–59 and non-443 ports stay clear of the e2e world (127.0.0.11–17:443).
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateCa } from '../../src/tls/ca.ts';
import { issueLeaf } from '../../src/tls/leaf.ts';
import { TaggedHosts } from '../helpers/etc-hosts.ts';
import { startDistribution, type Distribution } from './distribution.ts';
import { writeImage, type Image } from './image.ts';
import { startProxyChild, type ProxyChild } from './proxy.ts';
import { makeSkopeo, type Skopeo } from './skopeo.ts';

// Go clients never send loopback IP literals through a proxy: each registry needs a name.
const hosts = new TaggedHosts('# pullthrough-bench');
const UPSTREAM = { name: 'upstream.bench.test', ip: '127.0.0.51' };
const MIRROR = { name: 'mirror.bench.test', ip: '127.0.0.52' };
/** containers/image keeps a blob-info cache here when run as root, whatever skopeo's flags say. */
const SKOPEO_CACHE = '/var/lib/containers';

export interface PushedImage extends Image {
  readonly repository: string;
  readonly tag: string;
}

export interface Registries {
  readonly dir: string;
  readonly skopeo: Skopeo;
  readonly upstream: Distribution;
  /** distribution as a pull-through cache of `upstream`: the reference. */
  readonly mirror: Distribution;
  /** A directory with the upstream and mirror CA, for skopeo's `--src-cert-dir`. */
  readonly upstreamTrustDir: string;
  /** A directory with pullthrough's CA (shared by every child), for `--src-cert-dir`. */
  readonly proxyTrustDir: string;
  /** The pushed image of `repository`; throws if there is none. */
  image(repository: string): PushedImage;
  /** `docker://…` of `image` on `authority`. */
  reference(authority: string, image: PushedImage): string;
  /** A pullthrough child with an empty cache, intercepting the upstream; stopped by `close` too. */
  startProxy(name: string): Promise<ProxyChild>;
  /** `use` with a pullthrough of its own (startProxy), stopped once `use` settles. */
  withProxy<T>(name: string, use: (proxy: ProxyChild) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The test images: repository → total layer bytes, split into four layers of 40/30/20/10 %, or
 * `{ bytes, layers }`: that many layers of equal size.
 */
export async function startRegistries(
  images: Readonly<Record<string, number | { readonly bytes: number; readonly layers: number }>>,
): Promise<Registries> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pullthrough-bench-registries-'));
  const ownsSkopeoCache = !existsSync(SKOPEO_CACHE);
  const closers: Array<() => Promise<void>> = [
    async () => {
      hosts.remove();
      if (ownsSkopeoCache) await rm(SKOPEO_CACHE, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    },
  ];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  try {
    hosts.set([UPSTREAM, MIRROR]);
    const ca = await loadOrCreateCa({ dir: path.join(dir, 'ca'), hostname: 'bench-registries' });
    const caFile = path.join(dir, 'ca', 'ca.crt');
    const upstreamTrustDir = path.join(dir, 'upstream-trust');
    await mkdir(upstreamTrustDir);
    await copyFile(caFile, path.join(upstreamTrustDir, 'ca.crt'));
    const tls = async (name: string) => {
      const leaf = await issueLeaf(ca, name);
      const cert = path.join(dir, `${name}.crt`);
      const key = path.join(dir, `${name}.key`);
      await writeFile(cert, leaf.certPem);
      await writeFile(key, leaf.keyPem, { mode: 0o600 });
      return { cert, key };
    };

    const upstream = await startDistribution({
      ...UPSTREAM,
      dir: path.join(dir, 'upstream'),
      caFile,
      ...(await tls(UPSTREAM.name)),
    });
    closers.push(() => upstream.stop());
    const mirror = await startDistribution({
      ...MIRROR,
      dir: path.join(dir, 'mirror'),
      caFile,
      ...(await tls(MIRROR.name)),
      proxy: { remoteUrl: `https://${upstream.authority}`, trustFile: caFile },
    });
    closers.push(() => mirror.stop());

    const skopeo = await makeSkopeo(dir);
    const reference = (authority: string, image: PushedImage) =>
      `docker://${authority}/${image.repository}:${image.tag}`;
    const pushed: Record<string, PushedImage> = {};
    for (const [repository, spec] of Object.entries(images)) {
      const layers =
        typeof spec === 'number'
          ? [0.4, 0.3, 0.2, 0.1].map((share) => Math.round(spec * share))
          : Array.from({ length: spec.layers }, () => Math.round(spec.bytes / spec.layers));
      const layout = path.join(dir, 'oci', repository);
      const image = { ...(await writeImage(layout, 'v1', layers)), repository, tag: 'v1' };
      await skopeo.push(image.source, reference(upstream.authority, image), upstreamTrustDir);
      await rm(layout, { recursive: true, force: true }); // upstream's storage holds them now
      pushed[repository] = image;
    }

    const proxyCaDir = path.join(dir, 'proxy-ca');
    const proxyTrustDir = path.join(dir, 'proxy-trust');
    await mkdir(proxyTrustDir);
    let proxies = 0;
    const registries: Registries = {
      dir,
      skopeo,
      upstream,
      mirror,
      upstreamTrustDir,
      proxyTrustDir,
      image(repository) {
        const image = pushed[repository];
        if (image === undefined) throw new Error(`no image ${repository} was pushed`);
        return image;
      },
      reference,
      async startProxy(name) {
        const cacheDir = path.join(dir, `cache-${++proxies}`);
        const proxy = await startProxyChild({
          dir,
          name: `${name}-${proxies}`,
          caDir: proxyCaDir,
          cacheDir,
          registries: [upstream.authority],
          upstreamCaFile: caFile,
        });
        // Not the CA directory itself: containers/image would take its ca.key for a client key.
        await copyFile(proxy.caFile, path.join(proxyTrustDir, 'ca.crt'));
        let stopped = false;
        const stop = async () => {
          if (stopped) return;
          stopped = true;
          await proxy.stop();
          await rm(cacheDir, { recursive: true, force: true });
        };
        closers.push(stop);
        return { ...proxy, stop };
      },
      async withProxy(name, use) {
        const proxy = await registries.startProxy(name);
        try {
          return await use(proxy);
        } finally {
          await proxy.stop();
        }
      },
      close,
    };
    return registries;
  } catch (error) {
    await close();
    throw error;
  }
}

// The e2e world: names in /etc/hosts, a throwaway upstream PKI, the distribution registry on
// registry.test (127.0.0.11:443) and registry-v6.test ([::1]:443) over one storage, a tunnel-only
// TLS origin on origin.test (127.0.0.17:443), the test images pushed, and pullthrough in front.
// On request (`tokenAuth`), a registry with token auth on token-registry.test (127.0.0.13:443)
// and its token server on auth.test (127.0.0.14:443), both intercepted, as Docker Hub's are;
// and (`proxyAuth`) a proxy that requires credentials, which the clients' proxy URL carries.
// `startWorld()` builds it; `stop()` takes every piece down again, newest first.
// Client daemons (dockerd, containerd, podman's storage) live in ./clients and register with it.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  cleanStale,
  OUTSIDE_FILE,
  type OutsideKind,
  PIDS_FILE,
  removeOutside,
  removeWorldDir,
  WORLD_PREFIX,
} from './cleanup.ts';
import { hosts, type HostEntry } from './hosts.ts';
import { addImage, type ImageSpec, type TestImage } from './image.ts';
import { startOrigin, type Origin } from './origin.ts';
import { makeUpstreamPki, type Pki } from './pki.ts';
import { Processes, runOk } from './processes.ts';
import { startProxy, type ProxyCredentials, type Pullthrough } from './proxy.ts';
import { startRegistry, type Registry } from './registry.ts';
import { startTokenServer, TOKEN_PASSWORD, TOKEN_USER, type TokenServer } from './token-server.ts';

export const REGISTRY = 'registry.test';
/** On ::1, the one loopback name dockerd verifies TLS for (it treats 127/8 as insecure). */
export const REGISTRY_V6 = 'registry-v6.test';
export const ORIGIN = 'origin.test';
/** A registry with distribution's token auth: its realm is on AUTH. */
export const TOKEN_REGISTRY = 'token-registry.test';
/** The token server of TOKEN_REGISTRY (like Docker Hub's auth.docker.io), intercepted too. */
export const AUTH = 'auth.test';

export const HOSTS: readonly HostEntry[] = [
  { name: REGISTRY, ip: '127.0.0.11' },
  { name: REGISTRY_V6, ip: '::1' },
  { name: ORIGIN, ip: '127.0.0.17' },
  { name: TOKEN_REGISTRY, ip: '127.0.0.13' },
  { name: AUTH, ip: '127.0.0.14' },
];

function ipOf(name: string): string {
  const entry = HOSTS.find((host) => host.name === name);
  if (entry === undefined) throw new Error(`no address for ${name}`);
  return entry.ip;
}

export interface WorldOptions {
  /** Start pullthrough in front (default). `false` only for working on the world itself. */
  proxy?: boolean;
  /**
   * More images to build and push besides `small`, by key (`world.images[key]`). Each needs its
   * own repository: the layer's bytes are seeded by repository and file name, so distinct images
   * share no blob and a first pull of each is cold.
   */
  images?: Readonly<Record<string, ImageSpec>>;
  /**
   * Start TOKEN_REGISTRY and its token server on AUTH (see token-server.ts for who may do what),
   * and push these images there with the e2e user's credentials. Same rules as `images`.
   */
  tokenAuth?: { images: Readonly<Record<string, ImageSpec>> };
  /**
   * The proxy requires this user (`proxy.htpasswd`, bcrypt), and `clientEnv({ proxy: true })`
   * (dockerd's environment too) carries it in the proxy URL: `http://USER:PASSWORD@127.0.0.1:PORT`.
   */
  proxyAuth?: ProxyCredentials;
}

/**
 * A client's proxy: `true` for the world's proxy (with its credentials, if it requires some),
 * `false` for none, or a URL of one's own (e.g. the proxy with wrong credentials).
 */
export type ProxySetting = boolean | string;

/** TOKEN_REGISTRY, its token server and the images pushed to it. */
export interface TokenAuthWorld {
  registry: Registry;
  server: TokenServer;
  /** `user:password` of the one user, for `--creds` style flags. */
  creds: string;
  images: Readonly<Record<string, TestImage>>;
  /** The image pushed under `key`; throws if there is none. */
  image(key: string): TestImage;
}

export interface World {
  dir: string;
  /** HOME for every client run: no ~/.docker/config.json or auth.json leaks in. */
  home: string;
  processes: Processes;
  pki: Pki;
  /** A containers-policy.json that accepts anything, for skopeo `--policy`. */
  policy: string;
  /** `small` (`e2e/small:v1`, 1 MiB) and whatever `WorldOptions.images` asked for. */
  images: { small: TestImage } & Readonly<Record<string, TestImage>>;
  /** The image pushed under `key`; throws if there is none. */
  image(key: string): TestImage;
  /** registry.test and registry-v6.test (the token registry is in `tokenAuth`). */
  registries: Registry[];
  origin: Origin;
  /** The token-auth registry; throws if the world was started without `tokenAuth`. */
  tokenAuth: TokenAuthWorld;
  /** pullthrough; throws if the world was started without it. */
  proxy: Pullthrough;
  /**
   * Another pullthrough in front of the same registries, in `<world>/<name>`, stopped at the
   * world's stop (or earlier by the caller); `cache` and `mirror` settings as in ProxyOptions.
   */
  startProxy(
    name: string,
    options?: {
      cache?: Readonly<Record<string, unknown>>;
      mirror?: Readonly<Record<string, unknown>>;
      admin?: Readonly<Record<string, unknown>>;
      /** Replaces the registries list (e.g. `{host: REGISTRY, deny: [...]}` entries). */
      registries?: ReadonlyArray<string | Readonly<Record<string, unknown>>>;
      watch?: Readonly<Record<string, unknown>>;
      registrySettings?: Readonly<Record<string, unknown>>;
      cluster?: Readonly<Record<string, unknown>>;
      storage?: Readonly<Record<string, unknown>>;
      env?: Readonly<Record<string, string>>;
    },
  ): Promise<Pullthrough>;
  /** A new directory inside the world. */
  mkdir(name: string): string;
  /** Writes a file outside the world (e.g. /etc/docker/certs.d/…), removed at stop or by crash cleanup. */
  placeFile(path: string, content: string | Buffer): () => void;
  /**
   * For paths that a client creates outside the world whatever its flags (dockerd's /run/docker,
   * containers/image's /var/lib/containers/cache): each one absent now is removed at stop.
   */
  claimIfAbsent(...paths: string[]): void;
  /** Environment for a client: minimal, HOME in the world, and the proxy variables unless `proxy` is false. */
  clientEnv(options: { proxy: ProxySetting }): NodeJS.ProcessEnv;
  /** Runs `cleanup` at stop, before everything registered earlier. */
  defer(cleanup: () => unknown): void;
  stop(): Promise<void>;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  cleanStale();
  const dir = mkdtempSync(join(tmpdir(), WORLD_PREFIX));
  const cleanups: (() => unknown)[] = [];
  const noteOutside = (how: OutsideKind, path: string): void =>
    appendFileSync(join(dir, OUTSIDE_FILE), `${how}\t${path}\n`);
  const processes = new Processes(join(dir, PIDS_FILE), mkdirIn(dir, 'logs'));
  // If the test runner dies without running afterAll, at least no daemon outlives it.
  const onExit = (): void => {
    processes.killAllSync();
    removeOutside(dir);
    hosts.remove();
  };
  process.once('exit', onExit);

  const stop = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        errors.push(error);
      }
    }
    for (const daemon of processes.live()) {
      errors.push(new Error(`${daemon.name} (pid ${daemon.pid}) was still running at stop`));
      await daemon.stop(5_000);
    }
    removeOutside(dir);
    hosts.remove();
    removeWorldDir(dir);
    process.removeListener('exit', onExit);
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} errors stopping the e2e world`);
  };

  try {
    const home = mkdirIn(dir, 'home');
    // podman insists that REGISTRY_AUTH_FILE exists; an empty one means "no credentials".
    writeFileSync(join(home, 'auth.json'), '{"auths":{}}\n');
    const baseEnv: NodeJS.ProcessEnv = { PATH: searchPath(), HOME: home };
    hosts.set(HOSTS);
    // skopeo (containers/image) keeps a blob-info cache there for root, whatever its flags.
    const claimed = '/var/lib/containers';
    if (!existsSync(claimed)) noteOutside('tree', claimed);

    const pki = await makeUpstreamPki(
      join(dir, 'pki'),
      HOSTS.map((host) => host.name),
    );
    const storageDir = mkdirIn(dir, 'registry-storage');
    const registries: Registry[] = [];
    for (const name of [REGISTRY, REGISTRY_V6]) {
      const registry = await startRegistry({
        name,
        ip: ipOf(name),
        port: 443,
        storageDir,
        dir,
        pki,
        processes,
        env: baseEnv,
      });
      registries.push(registry);
      cleanups.push(() => registry.stop());
    }

    const origin = await startOrigin(ipOf(ORIGIN), 443, pki);
    cleanups.push(() => origin.close());

    let tokenRegistry: Registry | undefined;
    let tokenServer: TokenServer | undefined;
    if (options.tokenAuth !== undefined) {
      const server = await startTokenServer({
        name: AUTH,
        ip: ipOf(AUTH),
        port: 443,
        service: TOKEN_REGISTRY,
        pki,
        dir: mkdirIn(dir, 'token-server'),
      });
      tokenServer = server;
      cleanups.push(() => server.close());
      const registry = await startRegistry({
        name: TOKEN_REGISTRY,
        ip: ipOf(TOKEN_REGISTRY),
        port: 443,
        storageDir: mkdirIn(dir, 'token-registry-storage'),
        dir,
        pki,
        processes,
        env: baseEnv,
        tokenAuth: {
          realm: server.realm,
          service: server.service,
          issuer: server.issuer,
          rootCertBundle: server.rootCertBundle,
          // Any valid token opens /v2/: it asks for no repository.
          authorization: () => `Bearer ${server.mint('e2e-probe', [])}`,
        },
      });
      tokenRegistry = registry;
      cleanups.push(() => registry.stop());
    }

    const layout = mkdirIn(dir, 'oci');
    const small = addImage(layout, { repository: 'e2e/small', tag: 'v1', file: 'small.bin', size: 1 << 20 });
    const images: Record<string, TestImage> = { small };
    for (const [key, spec] of Object.entries(options.images ?? {})) {
      if (key in images) throw new Error(`image key ${key} is taken`);
      images[key] = addImage(layout, spec);
    }
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    const tokenImages: Record<string, TestImage> = {};
    for (const [key, spec] of Object.entries(options.tokenAuth?.images ?? {})) {
      if (key in tokenImages) throw new Error(`token image key ${key} is taken`);
      tokenImages[key] = addImage(layout, spec);
    }
    const creds = `${TOKEN_USER}:${TOKEN_PASSWORD}`;
    const push = (image: TestImage, host: string, auth: string[]) =>
      runOk(
        'skopeo',
        [
          '--policy',
          policy,
          'copy',
          '--quiet',
          '--dest-cert-dir',
          pki.caCertDir,
          ...auth,
          `oci:${layout}:${image.layoutName}`,
          `docker://${host}/${image.repository}:${image.tag}`,
        ],
        { env: baseEnv, timeoutMs: 60_000 },
      );
    const pushes = [
      ...Object.values(images).map((image) => push(image, REGISTRY, [])),
      ...Object.values(tokenImages).map((image) => push(image, TOKEN_REGISTRY, ['--dest-creds', creds])),
    ];
    // All pushes settle before any failure is thrown, so none is still running at stop.
    for (const result of await Promise.allSettled(pushes))
      if (result.status === 'rejected') throw result.reason;

    const startNamedProxy = async (
      name: string,
      extra: {
        cache?: Readonly<Record<string, unknown>>;
        mirror?: Readonly<Record<string, unknown>>;
        admin?: Readonly<Record<string, unknown>>;
        registries?: ReadonlyArray<string | Readonly<Record<string, unknown>>>;
        watch?: Readonly<Record<string, unknown>>;
        registrySettings?: Readonly<Record<string, unknown>>;
        cluster?: Readonly<Record<string, unknown>>;
        storage?: Readonly<Record<string, unknown>>;
        env?: Readonly<Record<string, string>>;
      } = {},
    ): Promise<Pullthrough> => {
      const started = await startProxy({
        dir: join(dir, name),
        registries: extra.registries ?? [
          REGISTRY,
          REGISTRY_V6,
          ...(tokenRegistry ? [TOKEN_REGISTRY, AUTH] : []),
        ],
        upstreamCaFile: pki.caCrt,
        processes,
        auth: options.proxyAuth,
        cache: extra.cache,
        mirror: extra.mirror,
        admin: extra.admin,
        watch: extra.watch,
        registrySettings: extra.registrySettings,
        cluster: extra.cluster,
        storage: extra.storage,
        env: extra.env,
      });
      cleanups.push(() => (started.daemon.exit === undefined ? started.stop() : undefined));
      return started;
    };
    const proxy = options.proxy === false ? undefined : await startNamedProxy('proxy');

    const world: World = {
      dir,
      home,
      processes,
      pki,
      policy,
      registries,
      origin,
      images: { ...images, small },
      image(key) {
        const image = images[key];
        if (image === undefined) throw new Error(`the world has no image ${key}`);
        return image;
      },
      get tokenAuth(): TokenAuthWorld {
        if (tokenRegistry === undefined || tokenServer === undefined)
          throw new Error('this world was started without tokenAuth');
        return {
          registry: tokenRegistry,
          server: tokenServer,
          creds,
          images: tokenImages,
          image(key) {
            const image = tokenImages[key];
            if (image === undefined) throw new Error(`the token registry has no image ${key}`);
            return image;
          },
        };
      },
      get proxy(): Pullthrough {
        if (proxy === undefined) throw new Error('this world was started without the proxy');
        return proxy;
      },
      startProxy: startNamedProxy,
      mkdir: (name) => mkdirIn(dir, name),
      placeFile(path, content) {
        const created: string[] = [];
        for (let parent = dirname(path); !existsSync(parent); parent = dirname(parent))
          created.unshift(parent);
        for (const parent of created) {
          noteOutside('dir', parent);
          mkdirSync(parent);
        }
        noteOutside('file', path);
        writeFileSync(path, content);
        return () => {
          rmSync(path, { force: true });
          for (const parent of created.reverse()) if (existsSync(parent)) rmdirSync(parent);
        };
      },
      clientEnv({ proxy: setting }) {
        const env: NodeJS.ProcessEnv = {
          ...baseEnv,
          DOCKER_CONFIG: join(home, '.docker'),
          REGISTRY_AUTH_FILE: join(home, 'auth.json'),
          NO_PROXY: '',
          no_proxy: '',
        };
        if (setting === false) return env;
        const url = setting === true ? world.proxy.url : setting;
        return { ...env, HTTPS_PROXY: url, HTTP_PROXY: url, https_proxy: url, http_proxy: url };
      },
      claimIfAbsent(...paths) {
        for (const path of paths) if (!existsSync(path)) noteOutside('tree', path);
      },
      defer: (cleanup) => void cleanups.push(cleanup),
      stop,
    };
    return world;
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

function mkdirIn(dir: string, name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  return path;
}

/** PATH with the sbin directories, where dockerd and runc live. */
function searchPath(): string {
  const path = (process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(':');
  for (const sbin of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!path.includes(sbin)) path.push(sbin);
  return path.join(':');
}

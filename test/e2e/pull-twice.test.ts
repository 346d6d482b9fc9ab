// Each real client pulls an image twice through the same pullthrough, with its own store emptied
// in between so that it really asks again. The registry's own log (between two `mark()`s) says
// what reached upstream during each pull: the second one fetches no blob and no manifest, only a
// HEAD of the tag (the proxy revalidating a GET of it, or the client's own HEAD passed on). Every
// client has an image of its own (distinct blobs), so its first pull is cold however the files
// before it went. Each test prints `[e2e] counts` rows.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { startContainerd } from './env/clients/containerd.ts';
import { DOCKER_CERTS_D, startDockerd } from './env/clients/dockerd.ts';
import { setupPodman } from './env/clients/podman.ts';
import { skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import type { ImageSpec, TestImage } from './env/image.ts';
import { countDuring, reportCounts, type UpstreamCounts } from './env/upstream-counts.ts';
import { expectSuccess, report, useWorld } from './env/vitest.ts';
import { REGISTRY, REGISTRY_V6, type World } from './env/world.ts';

const CLIENTS = ['skopeo', 'podman', 'ctr', 'docker'] as const;
type Client = (typeof CLIENTS)[number];

const imageFor = (client: Client): ImageSpec => ({
  repository: `e2e/twice-${client}`,
  tag: 'v1',
  file: 'twice.bin',
  size: 256 << 10,
});

const world = useWorld({
  images: Object.fromEntries(CLIENTS.map((client) => [client, imageFor(client)])),
});

interface PullTwice {
  client: Client;
  host: string;
  /** One pull; `n` is 1 or 2. */
  pull(n: number): Promise<void>;
  /** Empties the client's store after the first pull, so the second asks for everything again. */
  empty(): Promise<void>;
}

/** Both pulls with what reached upstream during each; asserts what the proxy logged for them. */
async function pullTwice(w: World, image: TestImage, steps: PullTwice): Promise<UpstreamCounts[]> {
  const { proxy, registries } = w;
  const pulls: UpstreamCounts[] = [];
  for (const n of [1, 2]) {
    if (n === 2) await steps.empty();
    const from = proxy.log.mark();
    pulls.push(
      await countDuring(registries, async () => {
        await steps.pull(n);
        await expectPullLogged(proxy.log, steps.host, image, from);
      }),
    );
    if (n === 2) {
      const lines = proxy.log.requests(steps.host, from);
      // The client did ask again for both blobs (expectPullLogged waited for both), and the proxy
      // answered from its cache.
      const blobs = expectBlobsFromCache(lines, image);
      console.info(`[e2e] ${steps.client} pull 2: proxy blob GETs → ${blobs}`);
      // A GET of the tag is revalidated (HEAD upstream, body from the cache). ctr only HEADs the
      // tag, which the proxy relays (it has no record of the tag from a HEAD), then GETs by digest.
      const tagPath = `/v2/${image.repository}/manifests/${image.tag}`;
      for (const line of lines.filter((candidate) => candidate.path === tagPath)) {
        console.info(
          `[e2e] ${steps.client} pull 2: proxy ${line.method} tag → cache: ${String(line['cache'])}`,
        );
        if (line.method === 'GET') expect(line['cache']).toBe('revalidated');
      }
    }
  }
  reportCounts(steps.client, pulls);
  return pulls;
}

/** What every client must show: a cold first pull, and nothing but a tag HEAD upstream the second time. */
function expectCounts(image: TestImage, [first, second]: UpstreamCounts[]): void {
  const blobGets = (counts: UpstreamCounts | undefined): string[] =>
    (counts?.requests ?? [])
      .filter((r) => r.method === 'GET' && r.uri.includes('/blobs/'))
      .map((r) => r.uri.split('/').at(-1) ?? '');
  expect(blobGets(first).sort()).toEqual([image.config.digest, image.layer.digest].sort());
  expect(blobGets(second)).toEqual([]);
  expect(second?.manifestGetByDigest).toBe(0);
  expect(second?.manifestGetByTag).toBe(0);
  const tagHead = `/v2/${image.repository}/manifests/${image.tag}`;
  expect(second?.requests.filter((r) => r.method === 'HEAD' && r.uri === tagHead).length).toBeGreaterThan(0);
}

test('skopeo copy twice: the second copy fetches nothing upstream', async () => {
  const w = world();
  const image = w.image('skopeo');
  const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
  const pulls = await pullTwice(w, image, {
    client: 'skopeo',
    host: REGISTRY,
    async pull(n) {
      expectSuccess(
        `skopeo copy #${n}`,
        await skopeoCopy(w, ref, w.mkdir(`twice-skopeo-${n}`), { certDir: w.proxy.caCertDir, proxy: true }),
      );
    },
    // A new dir: destination for each copy.
    empty: () => Promise.resolve(),
  });
  expectCounts(image, pulls);
});

test('podman pull twice, with podman rmi between: the second pull fetches nothing upstream', async () => {
  const w = world();
  const image = w.image('podman');
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const podman = setupPodman(w);
  const pulls = await pullTwice(w, image, {
    client: 'podman',
    host: REGISTRY,
    async pull(n) {
      expectSuccess(
        `podman pull #${n}`,
        await podman.run(['pull', '--quiet', '--cert-dir', w.proxy.caCertDir, ref], { proxy: true }),
      );
    },
    async empty() {
      expectSuccess('podman rmi', await podman.run(['rmi', ref], { proxy: false }));
      const left = expectSuccess('podman images', await podman.run(['images', '-q'], { proxy: false }));
      expect(left.stdout.trim()).toBe('');
    },
  });
  expectCounts(image, pulls);
});

test('ctr images pull twice, with rm --sync between: the second pull fetches nothing upstream', async () => {
  const w = world();
  const image = w.image('ctr');
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const containerd = await startContainerd(w);
  const pulls = await pullTwice(w, image, {
    client: 'ctr',
    host: REGISTRY,
    async pull(n) {
      expectSuccess(
        `ctr images pull #${n}`,
        await containerd.ctr(['images', 'pull', '--tlscacert', w.proxy.caCrt, ref], { proxy: true }),
      );
    },
    async empty() {
      // --sync runs the garbage collector now: the image's content and its snapshots go with it.
      expectSuccess('ctr images rm', await containerd.ctr(['images', 'rm', '--sync', ref], { proxy: false }));
      const content = expectSuccess(
        'ctr content ls',
        await containerd.ctr(['content', 'ls', '-q'], { proxy: false }),
      );
      expect(content.stdout.trim()).toBe('');
      const snapshots = expectSuccess(
        'ctr snapshots ls',
        await containerd.ctr(['snapshots', 'ls'], { proxy: false }),
      );
      expect(snapshots.stdout.trim().split('\n').slice(1)).toEqual([]);
    },
  });
  expectCounts(image, pulls);
});

test('docker pull twice, with docker rmi between: the second pull fetches nothing upstream', async () => {
  const w = world();
  const image = w.image('docker');
  const ref = `${REGISTRY_V6}/${image.repository}:${image.tag}`;
  const started = performance.now();
  const dockerd = await startDockerd(w, { proxy: true });
  report('dockerd start', performance.now() - started);
  const remove = w.placeFile(join(DOCKER_CERTS_D, REGISTRY_V6, 'ca.crt'), readFileSync(w.proxy.caCrt));
  try {
    const pulls = await pullTwice(w, image, {
      client: 'docker',
      host: REGISTRY_V6,
      async pull(n) {
        expectSuccess(`docker pull #${n}`, await dockerd.docker(['pull', '--quiet', ref]));
      },
      async empty() {
        expectSuccess('docker rmi', await dockerd.docker(['rmi', ref]));
        const left = expectSuccess('docker image ls', await dockerd.docker(['image', 'ls', '-q']));
        expect(left.stdout.trim()).toBe('');
        // rmi leaves the manifest in dockerd's content store (unleased: until containerd's next
        // garbage collection), and dockerd would read it from there instead of asking for it.
        const moby = { proxy: false, namespace: 'moby' };
        const listed = await dockerd.containerd.ctr(['content', 'ls', '-q'], moby);
        const digests = expectSuccess('ctr content ls (moby)', listed).stdout.split('\n').filter(Boolean);
        if (digests.length > 0) {
          const removed = await dockerd.containerd.ctr(['content', 'rm', ...digests], moby);
          expectSuccess('ctr content rm (moby)', removed);
        }
      },
    });
    expectCounts(image, pulls);
  } finally {
    remove();
  }
});

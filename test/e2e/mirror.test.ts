// Mirror mode (issue 23) with real clients: pullthrough's mirror listener on 127.0.0.1 (plain
// HTTP, no CA on the client, no proxy variables) in front of the world's registry.test. skopeo
// through a registries.conf mirror entry, ctr through a hosts.toml mirror (`?ns=`), a
// `/v2/<registry>/…` prefix pull, the cache shared with proxy mode both ways, and a registry off
// the list refused. What reached upstream comes from the registry's own log; that the mirror
// served each pull comes from pullthrough's log.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, test } from 'vitest';
import { startContainerd } from './env/clients/containerd.ts';
import { skopeo, skopeoCopy } from './env/clients/skopeo.ts';
import { expectBlobsFromCache, expectPullLogged } from './env/expect-pull.ts';
import type { ImageSpec, TestImage } from './env/image.ts';
import type { Pullthrough } from './env/proxy.ts';
import { countDuring, reportCounts, type UpstreamCounts } from './env/upstream-counts.ts';
import { expectFailure, expectSuccess, useWorld } from './env/vitest.ts';
import { ORIGIN, REGISTRY, type World } from './env/world.ts';

const KEYS = ['skopeo', 'ctr', 'prefix', 'proxyFirst', 'mirrorFirst'] as const;
const imageFor = (key: string): ImageSpec => ({
  repository: `e2e/mirror-${key.toLowerCase()}`,
  tag: 'v1',
  file: 'mirror.bin',
  size: 256 << 10,
});

const world = useWorld({
  proxy: false,
  images: Object.fromEntries(KEYS.map((key) => [key, imageFor(key)])),
});

let pullthrough: Pullthrough;
/** `127.0.0.1:PORT` of the mirror listener. */
let mirror: string;
/** A --src-cert-dir with no CA in it: a client that fell back to the registry itself would fail. */
let noCerts: string;

beforeAll(async () => {
  const w = world();
  pullthrough = await w.startProxy('pullthrough', { mirror: { listen: '127.0.0.1:0' } });
  mirror = `127.0.0.1:${String(pullthrough.mirrorPort)}`;
  noCerts = w.mkdir('no-certs');
});

/** The blob digests GET from upstream during `counts`. */
const blobGets = (counts: UpstreamCounts): string[] =>
  counts.requests
    .filter((r) => r.method === 'GET' && r.uri.includes('/blobs/'))
    .map((r) => r.uri.split('/').at(-1) ?? '');

/** Runs one pull, proves from pullthrough's log that it went through it, and counts upstream. */
async function pullLogged(w: World, image: TestImage, pull: () => Promise<void>): Promise<UpstreamCounts> {
  const from = pullthrough.log.mark();
  return countDuring(w.registries, async () => {
    await pull();
    await expectPullLogged(pullthrough.log, REGISTRY, image, from);
  });
}

function expectCold(image: TestImage, counts: UpstreamCounts): void {
  expect(blobGets(counts).sort()).toEqual([image.config.digest, image.layer.digest].sort());
}

function expectWarm(image: TestImage, counts: UpstreamCounts, from: number): void {
  expect(blobGets(counts)).toEqual([]);
  expect(counts.manifestGetByDigest).toBe(0);
  expectBlobsFromCache(pullthrough.log.requests(REGISTRY, from), image);
}

/** A registries.conf sending registry.test through the mirror as `127.0.0.1:PORT/registry.test`. */
function registriesConf(w: World): string {
  const file = join(w.mkdir('registries-conf'), 'registries.conf');
  writeFileSync(
    file,
    [
      '[[registry]]',
      `prefix = "${REGISTRY}"`,
      `location = "${REGISTRY}"`,
      '[[registry.mirror]]',
      `location = "${mirror}/${REGISTRY}"`,
      'insecure = true',
      '',
    ].join('\n'),
  );
  return file;
}

test('skopeo with a registries.conf mirror entry: the second pull costs no upstream blob GET', async () => {
  const w = world();
  const image = w.image('skopeo');
  const conf = registriesConf(w);
  const pulls: UpstreamCounts[] = [];
  for (const n of [1, 2]) {
    const from = pullthrough.log.mark();
    pulls.push(
      await pullLogged(w, image, async () => {
        const result = await skopeo(
          w,
          [
            '--registries-conf',
            conf,
            'copy',
            '--quiet',
            '--src-no-creds',
            '--src-cert-dir',
            noCerts,
            `docker://${REGISTRY}/${image.repository}:${image.tag}`,
            `dir:${w.mkdir(`mirror-skopeo-${n}`)}`,
          ],
          { proxy: false },
        );
        expectSuccess(`skopeo copy via registries.conf mirror #${n}`, result);
      }),
    );
    if (n === 2) expectWarm(image, pulls[1]!, from);
  }
  reportCounts('skopeo (mirror)', pulls);
  expectCold(image, pulls[0]!);
});

test('ctr with a hosts.toml mirror (?ns=): the second pull, from a fresh containerd, costs no upstream blob GET', async () => {
  const w = world();
  const image = w.image('ctr');
  const hostsDir = w.mkdir('hosts.d');
  w.mkdir(`hosts.d/${REGISTRY}`);
  writeFileSync(
    join(hostsDir, REGISTRY, 'hosts.toml'),
    [
      `server = "https://${REGISTRY}"`,
      '',
      `[host."http://${mirror}"]`,
      '  capabilities = ["pull", "resolve"]',
      '',
    ].join('\n'),
  );
  const ref = `${REGISTRY}/${image.repository}:${image.tag}`;
  const pulls: UpstreamCounts[] = [];
  for (const n of [1, 2]) {
    // A containerd of its own each time: nothing of the first pull is left in the second's store.
    const containerd = await startContainerd(w, `containerd-mirror-${n}`);
    const from = pullthrough.log.mark();
    pulls.push(
      await pullLogged(w, image, async () => {
        expectSuccess(
          `ctr images pull via hosts.toml mirror #${n}`,
          await containerd.ctr(['images', 'pull', '--hosts-dir', hostsDir, ref], { proxy: false }),
        );
      }),
    );
    if (n === 2) expectWarm(image, pulls[1]!, from);
  }
  reportCounts('ctr (mirror)', pulls);
  // containerd named the registry with ?ns=, on the repository's own path.
  const named = pullthrough.log.lines.filter(
    (line) => line.msg === 'mirror request' && String(line['as']).startsWith(`/v2/${image.repository}/`),
  );
  expect(named.length).toBeGreaterThan(0);
  for (const line of named) expect(String(line['url'])).toContain(`ns=${REGISTRY}`);
  expectCold(image, pulls[0]!);
});

test('a /v2/<registry>/ prefix pull: skopeo copy docker://127.0.0.1:PORT/registry.test/…', async () => {
  const w = world();
  const image = w.image('prefix');
  const counts = await pullLogged(w, image, async () => {
    const source = `docker://${mirror}/${REGISTRY}/${image.repository}:${image.tag}`;
    const dest = w.mkdir('mirror-prefix');
    const result = await skopeo(
      w,
      ['copy', '--quiet', '--src-no-creds', '--src-tls-verify=false', source, `dir:${dest}`],
      {
        proxy: false,
      },
    );
    expectSuccess('skopeo copy by prefix', result);
  });
  expectCold(image, counts);
});

test('an image pulled through HTTPS_PROXY is a hit through the mirror, and the other way round', async () => {
  const w = world();
  const viaProxy = (image: TestImage, n: string) => async () => {
    const ref = `docker://${REGISTRY}/${image.repository}:${image.tag}`;
    const result = await skopeoCopy(w, ref, w.mkdir(`cross-proxy-${n}`), {
      certDir: pullthrough.caCertDir,
      proxy: pullthrough.url,
    });
    expectSuccess(`skopeo copy through HTTPS_PROXY (${n})`, result);
  };
  const viaMirror = (image: TestImage, n: string) => async () => {
    const source = `docker://${mirror}/${REGISTRY}/${image.repository}:${image.tag}`;
    const args = ['copy', '--quiet', '--src-no-creds', '--src-tls-verify=false', source];
    const result = await skopeo(w, [...args, `dir:${w.mkdir(`cross-mirror-${n}`)}`], { proxy: false });
    expectSuccess(`skopeo copy through the mirror (${n})`, result);
  };
  for (const [key, first, second] of [
    ['proxyFirst', viaProxy, viaMirror],
    ['mirrorFirst', viaMirror, viaProxy],
  ] as const) {
    const image = w.image(key);
    const cold = await pullLogged(w, image, first(image, key));
    expectCold(image, cold);
    const from = pullthrough.log.mark();
    const warm = await pullLogged(w, image, second(image, key));
    expectWarm(image, warm, from);
    reportCounts(key, [cold, warm]);
  }
});

test('a registry not on the list is refused with DENIED and asked nothing', async () => {
  const w = world();
  const counts = await countDuring(w.registries, async () => {
    const source = `docker://${mirror}/${ORIGIN}/e2e/small:v1`;
    const result = await skopeo(w, ['inspect', '--raw', '--no-creds', '--tls-verify=false', source], {
      proxy: false,
    });
    const output = expectFailure('skopeo inspect of a registry off the list', result);
    expect(output).toMatch(/denied|not served/i);
  });
  expect(counts.requests).toEqual([]);
  expect(
    pullthrough.log.lines.some(
      (line) => line.msg === 'mirror: registry not served' && line['registry'] === ORIGIN,
    ),
  ).toBe(true);
  expect(pullthrough.log.requests(ORIGIN)).toEqual([]);
});

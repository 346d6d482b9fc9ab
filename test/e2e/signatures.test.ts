// Signatures through pullthrough with a real registry (distribution 2.8, which has no referrers
// API): a cosign-style signature artifact (OCI manifest with artifactType, empty config, a
// cosign layer, a subject naming e2e/small) is pushed by skopeo under the `sha256-<hex>.sig`
// tag. The referrers API answers 404 through the proxy (so clients use the tag schema); skopeo
// `inspect --raw` and `copy` of the signature tag work through the proxy, and a second copy is
// served from the cache: the registry's own log shows no blob GET for it.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { expect, test } from 'vitest';
import { skopeo, skopeoCopy } from './env/clients/skopeo.ts';
import { canonicalJson, OCI_INDEX, OCI_MANIFEST, type Descriptor } from './env/image.ts';
import { servedRequests } from './env/registry.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';

const world = useWorld();

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** An OCI layout at `dir` holding one signature artifact for `subject`, named `name`. */
function signatureLayout(
  dir: string,
  name: string,
  subject: Descriptor,
): { manifest: Buffer; layer: string } {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (mediaType: string, data: Buffer): Descriptor => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest.slice('sha256:'.length)), data);
    return { mediaType, digest, size: data.length };
  };
  const payload = canonicalJson({
    critical: {
      identity: { 'docker-reference': `${REGISTRY}/e2e/small` },
      image: { 'docker-manifest-digest': subject.digest },
      type: 'cosign container image signature',
    },
  });
  const layer = put(SIMPLESIGNING, Buffer.from(payload));
  const config = put(EMPTY, Buffer.from('{}'));
  const manifest = Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIG,
      config,
      layers: [{ ...layer, annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQDe2e' } }],
      subject,
    }),
  );
  const descriptor = put(OCI_MANIFEST, manifest);
  writeFileSync(join(dir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    canonicalJson({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': name } }],
    }),
  );
  return { manifest, layer: layer.digest };
}

test('a signature under sha256-<hex>.sig is pulled through the proxy, the second time from the cache', async () => {
  const { proxy, images, registries } = world();
  const subject = images.small.manifest;
  const tag = `sha256-${subject.digest.slice('sha256:'.length)}.sig`;
  const ref = `docker://${REGISTRY}/${images.small.repository}:${tag}`;
  const layout = world().mkdir('signature-layout');
  const signature = signatureLayout(layout, 'sig', subject);
  expectSuccess(
    'skopeo copy (push the signature, no proxy)',
    await skopeo(
      world(),
      ['copy', '--quiet', '--dest-cert-dir', world().pki.caCertDir, `oci:${layout}:sig`, ref],
      { proxy: false },
    ),
  );
  const registry = registries.find((r) => r.name === REGISTRY);
  if (registry === undefined) throw new Error(`no ${REGISTRY} in the world`);

  // The referrers API: distribution 2.8 has none, and its 404 reaches the client unchanged.
  const client = new ProxyAgent({
    uri: proxy.url,
    requestTls: { ca: readFileSync(join(proxy.caCertDir, 'ca.crt')) },
  });
  const referrers = await request(
    `https://${REGISTRY}/v2/${images.small.repository}/referrers/${subject.digest}`,
    { dispatcher: client },
  );
  await referrers.body.dump();
  await client.close();
  expect(referrers.statusCode).toBe(404);

  const from = proxy.log.mark();
  const raw = expectSuccess(
    'skopeo inspect --raw (signature tag)',
    await skopeo(world(), ['inspect', '--raw', '--no-creds', '--cert-dir', proxy.caCertDir, ref], {
      proxy: true,
    }),
  );
  expect(Buffer.from(raw.stdout.trim()).equals(signature.manifest)).toBe(true);
  const manifestLine = await proxy.log.waitForRequest(
    REGISTRY,
    'GET',
    `/v2/${images.small.repository}/manifests/${tag}`,
    { from },
  );
  expect(manifestLine).toMatchObject({ status: 200, cache: 'miss' });

  const layerPath = `/v2/${images.small.repository}/blobs/${signature.layer}`;
  const layerGets = () =>
    servedRequests(registry).filter((r) => r.method === 'GET' && r.uri === layerPath).length;
  const copies: string[] = [];
  for (const pass of ['cold', 'warm']) {
    const mark = proxy.log.mark();
    const dest = world().mkdir(`signature-${pass}`);
    expectSuccess(
      `skopeo copy (signature, ${pass})`,
      await skopeoCopy(world(), ref, dest, { certDir: proxy.caCertDir, proxy: true }),
    );
    expect(readFileSync(join(dest, signature.layer.slice('sha256:'.length)), 'utf8')).toContain(
      subject.digest,
    );
    const line = await proxy.log.waitForRequest(REGISTRY, 'GET', layerPath, { from: mark });
    copies.push(String(line['cache']));
  }
  await registry.mark();
  expect(copies).toEqual(['miss', 'hit']);
  expect(layerGets()).toBe(1);
});

// ctr (containerd 1.6) pulls through pullthrough. In 1.6 `ctr images pull` resolves and fetches in
// the ctr process, so HTTPS_PROXY and --tlscacert (the proxy's CA) are given to ctr; the private
// containerd daemon only stores and unpacks. The proxy's log shows the manifest and the layer.
import { expect, test } from 'vitest';
import { startContainerd } from './env/clients/containerd.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const world = useWorld();

test('ctr images pull through the proxy', async () => {
  const { proxy, images } = world();
  const containerd = await startContainerd(world());
  const from = proxy.log.mark();
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  expectSuccess(
    'ctr images pull',
    await containerd.ctr(['images', 'pull', '--tlscacert', proxy.caCrt, ref], { proxy: true }),
  );
  const requests = await expectPullLogged(proxy.log, REGISTRY, images.small, from);
  // containerd resolves the tag with HEAD, then fetches the manifest by digest (real-clients.md §9).
  expect(requests.map((line) => `${line.method} ${line.path}`)).toContain(
    `HEAD /v2/${images.small.repository}/manifests/${images.small.tag}`,
  );
  const listed = expectSuccess('ctr images ls', await containerd.ctr(['images', 'ls'], { proxy: false }));
  expect(listed.stdout).toContain(images.small.manifest.digest);
});

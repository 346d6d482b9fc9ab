// podman 4.3 (rootful, private containers.conf/storage.conf) pulls through pullthrough with the
// proxy's CA in --cert-dir; the proxy's log shows the manifest and the layer it fetched.
import { expect, test } from 'vitest';
import { setupPodman } from './env/clients/podman.ts';
import { expectPullLogged } from './env/expect-pull.ts';
import { expectSuccess, useWorld } from './env/vitest.ts';
import { REGISTRY } from './env/world.ts';

const world = useWorld();

test('podman pull through the proxy', async () => {
  const { proxy, images } = world();
  const podman = setupPodman(world());
  const from = proxy.log.mark();
  const ref = `${REGISTRY}/${images.small.repository}:${images.small.tag}`;
  expectSuccess(
    'podman pull',
    await podman.run(['pull', '--quiet', '--cert-dir', proxy.caCertDir, ref], { proxy: true }),
  );
  await expectPullLogged(proxy.log, REGISTRY, images.small, from);
  const inspect = expectSuccess(
    'podman image inspect',
    await podman.run(['image', 'inspect', '--format', '{{.Digest}}', ref], { proxy: false }),
  );
  expect(inspect.stdout.trim()).toBe(images.small.manifest.digest);
});

// skopeo as a client: every run gets the world's client environment (proxy variables or not),
// and `--policy` pointing at the world's accept-anything policy; `--no-creds` etc. are up to callers.
import { run, type RunResult } from '../processes.ts';
import type { ProxySetting, World } from '../world.ts';

export function skopeo(
  world: World,
  args: readonly string[],
  options: { proxy: ProxySetting },
): Promise<RunResult> {
  return run('skopeo', ['--policy', world.policy, ...args], {
    env: world.clientEnv(options),
    timeoutMs: 120_000,
  });
}

/**
 * `skopeo copy --quiet --src-no-creds` of `source` (a `docker://` reference) into the directory
 * `dest` (the `dir:` transport names each blob by its hex digest), trusting the CAs in `certDir`.
 */
export function skopeoCopy(
  world: World,
  source: string,
  dest: string,
  options: { certDir: string; proxy: ProxySetting },
): Promise<RunResult> {
  return skopeo(
    world,
    ['copy', '--quiet', '--src-no-creds', '--src-cert-dir', options.certDir, source, `dir:${dest}`],
    { proxy: options.proxy },
  );
}

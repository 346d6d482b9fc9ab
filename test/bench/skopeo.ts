// skopeo (containers/image, Go) as the client of the image scenarios: `skopeo copy` of a
// `docker://` reference into a `dir:` directory, straight to a registry or through pullthrough
// (HTTPS_PROXY). It verifies every blob's digest itself, so exit code 0 means a correct copy.
// It runs with a minimal environment: no proxy variables unless asked, a HOME of its own so no
// ~/.docker/config.json or auth.json leaks credentials in, and a policy that accepts anything.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface Skopeo {
  /**
   * Copies `source` (`docker://…`) to `dir:<dest>`, trusting the CAs in `certDir` (a directory
   * of `*.crt` files), through `proxy` when given; resolves to the wall time in seconds.
   */
  copy(options: { source: string; dest: string; certDir: string; proxy?: string }): Promise<number>;
  /** Copies `source` (e.g. `oci:DIR:NAME`) to `dest` (`docker://…`) with no proxy. */
  push(source: string, dest: string, certDir: string): Promise<void>;
}

async function run(args: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn('skopeo', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0)
    throw new Error(
      `skopeo ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}): ${stderr.trim()}`,
    );
}

export async function makeSkopeo(dir: string): Promise<Skopeo> {
  const home = path.join(dir, 'skopeo-home');
  await mkdir(home, { recursive: true });
  const policy = path.join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env = (proxy?: string): NodeJS.ProcessEnv => ({
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    DOCKER_CONFIG: path.join(home, '.docker'),
    REGISTRY_AUTH_FILE: path.join(home, 'auth.json'),
    NO_PROXY: '',
    no_proxy: '',
    ...(proxy === undefined ? {} : { HTTPS_PROXY: proxy, https_proxy: proxy }),
  });
  await writeFile(path.join(home, 'auth.json'), '{"auths":{}}\n');
  return {
    async copy({ source, dest, certDir, proxy }) {
      const args = ['--policy', policy, 'copy', '--quiet', '--src-no-creds', '--src-cert-dir', certDir];
      const started = performance.now();
      await run([...args, source, `dir:${dest}`], env(proxy));
      return (performance.now() - started) / 1000;
    },
    push: (source, dest, certDir) =>
      run(['--policy', policy, 'copy', '--quiet', '--dest-cert-dir', certDir, source, dest], env()),
  };
}

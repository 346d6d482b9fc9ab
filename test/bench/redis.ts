// redis-server (Debian's) for the cluster scenarios: a free loopback port, no persistence, ready
// once it says so; stopped with SIGKILL since it holds nothing worth a clean shutdown.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';

/** redis-server on a free loopback port, no persistence; ready once it says so. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let seen = '';
  while (!seen.includes('Ready to accept connections')) {
    const [chunk] = (await Promise.race([
      once(child.stdout, 'data'),
      once(child, 'error').then(([error]) => Promise.reject(error as Error)),
    ])) as [Buffer];
    seen += chunk.toString();
  }
  child.stdout.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

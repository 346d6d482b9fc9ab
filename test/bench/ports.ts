// Loopback ports for the reference servers that cannot listen on port 0 and report it (nginx,
// squid): a port free right now, and waiting until a child process listens on it.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * A port free right now. On loopback, with nothing else binding, the window between close and
 * the child's bind is harmless.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once `host:port` accepts a connection; throws with `why()` if `child` exits first. */
export async function listening(
  port: number,
  child: ChildProcess,
  why: () => Promise<string>,
  host = '127.0.0.1',
): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(await why());
    const socket = net.connect(port, host);
    try {
      await once(socket, 'connect');
      return;
    } catch {
      await delay(25); // no readiness signal in the foreground but the port
    } finally {
      socket.destroy();
    }
  }
  throw new Error(`${child.spawnfile} did not listen on ${host}:${port}`);
}

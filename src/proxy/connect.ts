// One CONNECT request, once Node's HTTP parser has handed over its socket: admission (client,
// credentials), the target parsed, then interception (intercept.ts) or, to an allowed port and
// within the tunnel limits, a raw tunnel (tunnel.ts). Answers refusals on the raw socket.
import type http from 'node:http';
import type net from 'node:net';
import type { Logger } from '../log.ts';
import { formatAuthority, parseAuthority, type Destination } from '../http/destination.ts';
import type { Admission } from './admission.ts';
import { intercept, type InterceptOptions } from './intercept.ts';
import type { InterceptList } from './intercept-list.ts';
import { writeStatus } from './status.ts';
import { openTunnel, type TunnelOptions } from './tunnel.ts';

export interface ConnectDispatch {
  readonly admission: Admission;
  readonly interceptList: InterceptList;
  /** Ports a CONNECT may tunnel to (intercepted registries' ports are always allowed). */
  readonly connectPorts: ReadonlySet<number>;
  readonly log: Logger;
  /** True once shutdown has begun: new CONNECTs are turned away. */
  readonly closing: () => boolean;
  readonly intercept: InterceptOptions;
  /** All a tunnel needs but its release, which admission hands out per tunnel. */
  readonly tunnel: Omit<TunnelOptions, 'release'>;
}

export async function dispatchConnect(
  req: http.IncomingMessage,
  socket: net.Socket,
  head: Buffer,
  options: ConnectDispatch,
): Promise<void> {
  const refusal = await options.admission.admitRequest(req);
  if (refusal) {
    writeStatus(socket, refusal.status, refusal.message, refusal.headers);
    return;
  }
  const destination = parseAuthority(req.url ?? '');
  if (destination === undefined) {
    options.log.info({ target: String(req.url).slice(0, 300) }, 'bad connect target');
    writeStatus(socket, 400, 'CONNECT target must be host:port');
    return;
  }
  if (options.closing()) {
    writeStatus(socket, 503, 'shutting down');
    return;
  }
  if (options.interceptList.matches(destination.host, destination.port)) {
    void intercept(socket, head, destination, options.intercept);
    return;
  }
  await tunnel(socket, head, destination, options);
}

/** A destination that is not intercepted: tunnelled if its port is allowed and a slot is free. */
async function tunnel(
  socket: net.Socket,
  head: Buffer,
  destination: Destination,
  options: ConnectDispatch,
): Promise<void> {
  if (!options.connectPorts.has(destination.port)) {
    options.log.warn(
      { destination: formatAuthority(destination), client: socket.remoteAddress },
      'tunnel refused: port not in proxy.connectPorts',
    );
    writeStatus(socket, 403, `CONNECT to port ${destination.port} is not allowed (proxy.connectPorts)`);
    return;
  }
  const release = options.admission.openTunnel(socket.remoteAddress);
  if (!release) {
    writeStatus(socket, 503, 'too many tunnels');
    return;
  }
  await openTunnel(socket, head, destination, { ...options.tunnel, release });
}

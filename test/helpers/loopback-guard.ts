// A tripwire for tests that generate connection targets (fuzzing): while installed, every TCP
// connection and every DNS lookup this process makes (the proxy's tunnels, forwards, upstream
// requests and destination checks included) must name a loopback IP literal. Anything else is
// refused before a packet leaves, as the error a caller expects (ECONNREFUSED, ENOTFOUND), and
// recorded so the test can fail on it.
import dns from 'node:dns';
import net from 'node:net';

export interface LoopbackGuard {
  /** Hosts that something tried to connect to or look up, and was refused. */
  readonly refused: readonly string[];
  uninstall(): void;
}

/** 127.0.0.0/8 and ::1 as IP literals (bracketed or not); names, even `localhost`, are not. */
export function isLoopbackLiteral(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (net.isIPv4(bare)) return bare.startsWith('127.');
  if (!net.isIPv6(bare)) return false;
  return bare === '::1' || /^(?:0{1,4}:){7}0{0,3}1$/.test(bare) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(bare);
}

/** The host a `Socket#connect(...)` call would connect to, or undefined for a Unix socket path. */
function hostOf(args: unknown[]): string | undefined {
  // net.connect() hands Socket#connect its already-normalised arguments as an array.
  const first: unknown = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'object' && first !== null) {
    const options = first as { host?: unknown; path?: unknown };
    if (typeof options.path === 'string' && options.path !== '') return undefined;
    return typeof options.host === 'string' ? options.host : 'localhost';
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return undefined;
  return typeof args[1] === 'string' ? args[1] : 'localhost';
}

function refusal(host: string, code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`loopback guard: refused ${host}`), { code, hostname: host });
}

type Patchable = Record<'connect' | 'lookup', (...args: unknown[]) => unknown>;

export function installLoopbackGuard(): LoopbackGuard {
  const socket = net.Socket.prototype as unknown as Patchable;
  const callbacks = dns as unknown as Patchable;
  const promises = dns.promises as unknown as Patchable;
  const originals = { connect: socket.connect, lookup: callbacks.lookup, lookupPromise: promises.lookup };
  const refused: string[] = [];

  socket.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const host = hostOf(args);
    if (host === undefined || isLoopbackLiteral(host)) return originals.connect.apply(this, args);
    refused.push(host);
    process.nextTick(() => this.destroy(refusal(host, 'ECONNREFUSED')));
    return this;
  };
  callbacks.lookup = function guardedLookup(this: unknown, ...args: unknown[]) {
    const host = String(args[0]);
    if (isLoopbackLiteral(host)) return originals.lookup.apply(this, args);
    refused.push(host);
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      process.nextTick(() => (callback as (error: Error) => void)(refusal(host, 'ENOTFOUND')));
    }
    return undefined;
  };
  promises.lookup = function guardedLookupPromise(this: unknown, ...args: unknown[]) {
    const host = String(args[0]);
    if (isLoopbackLiteral(host)) return originals.lookupPromise.apply(this, args);
    refused.push(host);
    return Promise.reject(refusal(host, 'ENOTFOUND'));
  };

  return {
    refused,
    uninstall() {
      socket.connect = originals.connect;
      callbacks.lookup = originals.lookup;
      promises.lookup = originals.lookupPromise;
    },
  };
}

// A parent proxy (upstream.proxy, or pullthrough's own HTTPS_PROXY when upstream.proxyFromEnv):
// the URL read once, NO_PROXY's exceptions, and the CONNECT handshake that opens a byte stream
// to a destination through it. The upstream client and the tunnels both use it; credentials
// travel only in Proxy-Authorization to the parent and are never part of a message or log.
import net from 'node:net';

export interface ParentProxy {
  readonly host: string;
  readonly port: number;
  /** `Basic <base64>` when the URL holds credentials. */
  readonly authorization: string | undefined;
  /** NO_PROXY entries (only from the environment): destinations reached directly. */
  readonly noProxy: readonly string[];
}

/** `http://[user:pass@]host:port` as a parent proxy, or undefined when it is not one. */
export function parseProxyUrl(text: string): Omit<ParentProxy, 'noProxy'> | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' || !url.hostname || (url.pathname !== '/' && url.pathname !== '')) {
    return undefined;
  }
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 80),
    authorization:
      user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` : undefined,
  };
}

/**
 * The parent to use: `upstream.proxy` when set; else, when `fromEnv`, the process's own
 * HTTPS_PROXY (or HTTP_PROXY, either case) with its NO_PROXY. Throws on an unreadable variable.
 */
export function resolveParentProxy(
  settings: { readonly proxy: string | null; readonly proxyFromEnv: boolean },
  env: Readonly<Record<string, string | undefined>>,
): ParentProxy | undefined {
  if (settings.proxy !== null) {
    const parsed = parseProxyUrl(settings.proxy);
    if (!parsed) throw new Error('upstream.proxy is not an http://[user:pass@]host:port URL');
    return { ...parsed, noProxy: [] };
  }
  if (!settings.proxyFromEnv) return undefined;
  const [name, value] =
    (['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const)
      .map((key) => [key, env[key]] as const)
      .find(([, text]) => text !== undefined && text.trim() !== '') ?? [];
  if (name === undefined || value === undefined) return undefined;
  const parsed = parseProxyUrl(value);
  if (!parsed) throw new Error(`${name} is not an http://[user:pass@]host:port URL`);
  const noProxy = (env['NO_PROXY'] ?? env['no_proxy'] ?? '')
    .split(/[\s,]+/)
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '');
  return { ...parsed, noProxy };
}

/**
 * Whether `host:port` is reached directly (NO_PROXY, as curl reads it): `*` is everything; a
 * name matches itself and its subdomains (a leading dot is optional); `:port` narrows an entry.
 */
export function bypassesParent(parent: ParentProxy, host: string, port: number): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return parent.noProxy.some((entry) => {
    if (entry === '*') return true;
    const match = /^(.*?)(?::(\d+))?$/.exec(entry.replace(/^\[(.*)\]/, '$1'));
    const domain = (match?.[1] ?? '').replace(/^\*?\./, '');
    if (match?.[2] !== undefined && Number(match[2]) !== port) return false;
    return domain !== '' && (name === domain || name.endsWith(`.${domain}`));
  });
}

/** The parent refused or failed the CONNECT; `code` lets callers treat it as unreachable. */
export class ParentProxyError extends Error {
  override readonly name = 'ParentProxyError';
  readonly code: string;

  constructor(message: string, code = 'EPARENTPROXY') {
    super(message);
    this.code = code;
  }
}

const MAX_RESPONSE_HEAD = 16 * 1024;

/**
 * On a socket connected to the parent: asks it to CONNECT to `host:port` and resolves, paused,
 * once it answers 2xx (anything it sent past its head is put back). Rejects on any other answer.
 */
export function handshake(
  socket: net.Socket,
  parent: ParentProxy,
  host: string,
  port: number,
): Promise<void> {
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const auth = parent.authorization ? `Proxy-Authorization: ${parent.authorization}\r\n` : '';
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const done = (error?: Error) => {
      socket.off('data', onData).off('end', onEnd).off('error', done);
      socket.pause();
      if (error) reject(error);
      else resolve();
    };
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffer.length > MAX_RESPONSE_HEAD)
          done(new ParentProxyError('parent proxy sent an endless answer'));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(buffer.toString('latin1', 0, end))?.[1];
      if (status === undefined || !status.startsWith('2')) {
        return done(
          new ParentProxyError(
            `parent proxy answered ${status ?? 'something not HTTP'} to CONNECT ${authority}`,
          ),
        );
      }
      const rest = buffer.subarray(end + 4);
      done();
      if (rest.length > 0) socket.unshift(rest);
    };
    const onEnd = () =>
      done(new ParentProxyError(`parent proxy closed the connection before CONNECT ${authority}`));
    socket.on('data', onData).once('end', onEnd).once('error', done);
  });
}

/** A socket to the parent with its CONNECT to `host:port` done, or the reason why not. */
export function connectThrough(
  parent: ParentProxy,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<net.Socket> {
  const socket = net.connect({ host: parent.host, port: parent.port });
  const timer = setTimeout(
    () =>
      socket.destroy(
        new ParentProxyError(`parent proxy: no tunnel within ${timeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT'),
      ),
    timeoutMs,
  );
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      handshake(socket, parent, host, port).then(resolve, reject);
    });
  });
  return opened.then(
    () => {
      clearTimeout(timer);
      return socket;
    },
    (error: unknown) => {
      clearTimeout(timer);
      socket.destroy();
      throw error;
    },
  );
}

// Vocabulary of the proxy layer:
// - host: a DNS name or IP literal, lower-cased, without brackets or trailing dot ("registry-1.docker.io", "::1");
// - destination: host + port + scheme, where a client asked to go: the CONNECT authority or the
//   absolute-form URL of a plain-HTTP proxy request. The Host header is never trusted for this.
import net from 'node:net';

export interface Destination {
  readonly host: string;
  readonly port: number;
  readonly scheme: 'https' | 'http';
}

const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$/;

/** `host:port` / `[v6]:port` of a CONNECT request line, or undefined when malformed. Pure. */
export function parseAuthority(
  authority: string,
  scheme: Destination['scheme'] = 'https',
): Destination | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(authority);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = normalizeHost(match[1] ?? match[2] ?? '');
  if (host === undefined || (match[1] !== undefined && net.isIPv6(host) === false)) return undefined;
  return { host, port, scheme };
}

/** Lower-cased host without a trailing dot, if it is a valid DNS name or IP literal. Pure. */
export function normalizeHost(input: string): string | undefined {
  const host = input.toLowerCase().replace(/\.$/, '');
  if (net.isIP(host) !== 0) return host;
  return HOSTNAME.test(host) ? host : undefined;
}

/** `host:port` for logs and URLs, bracketing IPv6 literals. */
export function formatAuthority(destination: Pick<Destination, 'host' | 'port'>): string {
  const host = net.isIPv6(destination.host) ? `[${destination.host}]` : destination.host;
  return `${host}:${destination.port}`;
}

export function originOf(destination: Destination): string {
  const defaultPort = destination.scheme === 'https' ? 443 : 80;
  const host = net.isIPv6(destination.host) ? `[${destination.host}]` : destination.host;
  return `${destination.scheme}://${host}${destination.port === defaultPort ? '' : `:${destination.port}`}`;
}

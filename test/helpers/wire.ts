// Raw client plumbing for hostile-input tests: one exchange of arbitrary bytes with a deadline
// (over TCP, or over TLS inside a CONNECT to an intercepted host), a lenient parser of what came
// back, and a file-tree walker for checking what the proxy wrote to disk.
import { once } from 'node:events';
import { lstat, readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { readHead } from './proxy.ts';

export interface Exchange {
  /** Every byte the peer sent before it closed or the deadline passed. */
  readonly bytes: Buffer;
  /** The peer closed (FIN or reset) before the deadline. */
  readonly closed: boolean;
}

/**
 * Sends `data` on `socket` (ending our side when `end`), then collects what comes back until
 * the peer closes or `deadlineMs` passes, whichever is first; the socket is destroyed after.
 */
export function exchange(
  socket: net.Socket,
  data: Buffer,
  options: { end: boolean; deadlineMs: number },
): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => finish(false), options.deadlineMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset, or EPIPE because the proxy closed while we were still writing: closed either way.
    socket.on('error', () => finish(true));
    socket.once('close', () => finish(true));
    socket.once('end', () => finish(true));
    socket.resume();
    if (data.length > 0) socket.write(data);
    if (options.end) socket.end();
  });
}

export async function connectTcp(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

/** CONNECTs to `authority` through the proxy; resolves with the tunnel once the proxy said 200. */
export async function connectThrough(port: number, authority: string): Promise<net.Socket> {
  const socket = await connectTcp(port);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const { head } = await readHead(socket);
  if (!head.startsWith('HTTP/1.1 200 ')) {
    socket.destroy();
    throw new Error(`CONNECT ${authority} answered ${JSON.stringify(head.split('\r\n')[0])}`);
  }
  return socket;
}

/** A TLS session inside a CONNECT to an intercepted `authority`, trusting the proxy's CA. */
export async function connectIntercepted(
  port: number,
  authority: string,
  caPem: string,
): Promise<tls.TLSSocket> {
  const tunnel = await connectThrough(port, authority);
  const secure = tls.connect({ socket: tunnel, ca: caPem, checkServerIdentity: () => undefined });
  try {
    await once(secure, 'secureConnect');
  } catch (error) {
    tunnel.destroy();
    throw error;
  }
  return secure;
}

export interface ParsedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5]\d\d)(?: [^\r\n]*)?$/;

/** Whether `bytes` begin with a complete, well-formed HTTP/1.x status line. */
export function startsWithStatusLine(bytes: Buffer): boolean {
  const end = bytes.indexOf('\r\n');
  return end !== -1 && STATUS_LINE.test(bytes.subarray(0, end).toString('latin1'));
}

/**
 * The final response in `bytes` (interim 1xx skipped), read to the end of its framing: undefined
 * when no complete head arrived; throws when the head is not HTTP.
 */
export function parseResponse(bytes: Buffer): ParsedResponse | undefined {
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const match = STATUS_LINE.exec(statusLine);
    if (!match) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine.slice(0, 200))}`);
    const status = Number(match[1]);
    rest = rest.subarray(end + 4);
    if (status < 200) continue;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`malformed response header line: ${JSON.stringify(line)}`);
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = headers['content-length'];
    const body =
      headers['transfer-encoding'] === 'chunked'
        ? dechunk(rest)
        : length === undefined
          ? rest
          : rest.subarray(0, Number(length));
    return { status, headers, body };
  }
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd === -1) break;
    const size = Number.parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isSafeInteger(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export interface TreeEntry {
  /** Relative to the walked root, with `/` separators. */
  readonly path: string;
  readonly kind: 'file' | 'dir' | 'symlink' | 'other';
  readonly size: number;
}

/** Every entry under `root` (depth first, symlinks reported and not followed). */
export async function walk(root: string, prefix = ''): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  for (const name of (await readdir(path.join(root, prefix))).sort()) {
    const relative = prefix === '' ? name : `${prefix}/${name}`;
    const info = await lstat(path.join(root, relative));
    const kind = info.isSymbolicLink()
      ? 'symlink'
      : info.isDirectory()
        ? 'dir'
        : info.isFile()
          ? 'file'
          : 'other';
    entries.push({ path: relative, kind, size: info.size });
    if (kind === 'dir') entries.push(...(await walk(root, relative)));
  }
  return entries;
}

// Minimal HTTP/1.1 answers written straight onto a socket that has left the HTTP parser
// (after CONNECT): a status line, a one-line text body, then close.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export function writeStatus(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${message.replace(/[\r\n]+/g, ' ')}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

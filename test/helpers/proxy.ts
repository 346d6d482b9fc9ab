// The real proxy (startApp) in-process on port 0 with a temp CA and cache, logs captured as
// objects, and clients that go through it: undici's ProxyAgent (CONNECT + TLS trusting our CA)
// and a raw socket for hostile input.
import net from 'node:net';
import path from 'node:path';
import { EventEmitter, once } from 'node:events';
import { Writable } from 'node:stream';
import { ProxyAgent, request as undiciRequest, type Dispatcher } from 'undici';
import { onTestFinished } from 'vitest';
import { startApp, type App, type AppSeams } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { upstreamPki } from './pki.ts';
import { tempDir } from './tmp.ts';

export type LogLine = Record<string, unknown> & { msg?: string };

export interface TestProxy {
  readonly app: App;
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly logs: LogLine[];
  /** Resolves with the first log line (past or future) matching `predicate`. */
  waitForLog(predicate: (line: LogLine) => boolean): Promise<LogLine>;
  /** A client that CONNECTs through the proxy and trusts its CA. */
  readonly client: Dispatcher;
  /** GET/HEAD/... `https://<authority><path>` through the proxy. */
  fetch(
    authority: string,
    path: string,
    options?: Partial<Omit<Dispatcher.RequestOptions, 'origin' | 'path'>>,
  ): Promise<Dispatcher.ResponseData<unknown>>;
  close(): Promise<void>;
}

type Tree = Record<string, unknown>;

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object'
        ? merge(current as Tree, value as Tree)
        : value;
  }
  return out;
}

export async function startProxy(
  overrides: Tree = {},
  env: Record<string, string> = {},
  seams: AppSeams = {},
): Promise<TestProxy> {
  const dir = await tempDir();
  const pki = await upstreamPki();
  const raw = merge(
    {
      listen: '127.0.0.1:0',
      registries: [],
      ca: { dir: path.join(dir, 'ca') },
      cache: { dir: path.join(dir, 'cache') },
      upstream: { caFiles: [pki.caFile], connectTimeout: '2s' },
      log: { level: 'debug' },
      shutdownTimeout: '2s',
    },
    overrides,
  );
  const config = parseConfig(raw, env, 'test', dir);
  const logs: LogLine[] = [];
  const lines = new EventEmitter();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        const parsed = JSON.parse(line) as LogLine;
        logs.push(parsed);
        lines.emit('line', parsed);
      }
      callback();
    },
  });
  const app = await startApp(config, createLogger(config.log.level, sink), seams);
  const port = app.address.port;
  const url = `http://127.0.0.1:${port}`;
  const client = new ProxyAgent({ uri: url, requestTls: { ca: [app.ca.certPem] } });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    // The app first: undici's client.close() would wait for in-flight requests forever.
    await app.close();
    await client.destroy().catch(() => undefined);
  };
  onTestFinished(close);
  return {
    app,
    port,
    url,
    dir,
    logs,
    client,
    waitForLog: (predicate) =>
      new Promise((resolve) => {
        const found = logs.find(predicate);
        if (found) return resolve(found);
        const onLine = (line: LogLine) => {
          if (!predicate(line)) return;
          lines.off('line', onLine);
          resolve(line);
        };
        lines.on('line', onLine);
      }),
    fetch: (authority, urlPath, options = {}) =>
      undiciRequest(`https://${authority}${urlPath}`, { ...options, dispatcher: client }),
    close,
  };
}

/** Opens a raw TCP connection to the proxy, writes `data`, and resolves with the socket. */
export async function rawConnection(port: number, data?: string | Buffer): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  onTestFinished(() => {
    socket.destroy();
  });
  if (data !== undefined) socket.write(data);
  return socket;
}

/** Reads from `socket` until the end of an HTTP response head; resolves with head + rest. */
export function readHead(socket: net.Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const finish = (head: string, rest: Buffer) => {
      socket.off('data', onData).off('end', onEnd).off('error', reject);
      socket.pause();
      resolve({ head, rest });
    };
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end !== -1) finish(buffer.subarray(0, end).toString('latin1'), buffer.subarray(end + 4));
    };
    const onEnd = () => finish(buffer.toString('latin1'), Buffer.alloc(0));
    socket.on('data', onData).once('end', onEnd).once('error', reject);
  });
}

// The internal endpoint between replicas (plain HTTP on cluster.listen, guarded by the shared
// secret): GET /cluster/v1/blobs/<digest> streams a blob from the fill running here (waiting for
// one that is about to start), or from this replica's store, from byte N with `Range: bytes=N-`.
// Headers go out as soon as the fill has them; the bytes follow as they arrive, the last one
// only once verified (the fill's own readers hold it back); a fill that fails cuts the socket.
// GET /cluster/v1/members lists the replicas. /cluster/v1/admin/… is the admin API's /admin/…,
// asked by a replica that does not keep the books (admin.ts), answered without the admin token.
import { timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BlobStore, ByteSource } from '../cache/blobs.ts';
import type { Fill } from '../cache/fills.ts';
import type { Logger } from '../log.ts';
import { parseDigest } from '../oci/digest.ts';
import { ADMIN_PREFIX } from './admin.ts';
import type { Member } from './members.ts';

const CHUNK = 256 * 1024;

export interface EndpointDeps {
  readonly secret: string;
  /** The fill of a digest running on this replica, without asking the cluster. */
  readonly localFill: (digest: string) => Fill | Promise<Fill | undefined> | undefined;
  readonly store: BlobStore;
  readonly members: () => readonly Member[];
  /** The admin API for requests another replica authenticated; undefined until it is built. */
  readonly admin: () => ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  readonly log: Logger;
}

export interface Endpoint {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function startEndpoint(host: string, port: number, deps: EndpointDeps): Promise<Endpoint> {
  const server = http.createServer((req, res) => {
    handle(req, res, deps).catch((error: unknown) => {
      deps.log.debug({ err: (error as Error).message, url: req.url }, 'cluster stream cut');
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, deps: EndpointDeps): Promise<void> {
  if (!authorized(req.headers.authorization, deps.secret)) return send(res, 401, 'unauthorized\n');
  const path = (req.url ?? '/').split('?', 1)[0]!;
  if (req.method === 'GET' && path === '/cluster/v1/members') {
    return send(res, 200, JSON.stringify(deps.members()), 'application/json');
  }
  if (path.startsWith(`${ADMIN_PREFIX}/admin/`)) {
    const admin = deps.admin();
    if (!admin) {
      const error = 'this replica serves no admin API (admin.token unset here, or still starting)';
      return send(res, 503, `${JSON.stringify({ error })}\n`, 'application/json; charset=utf-8');
    }
    req.url = req.url!.slice(ADMIN_PREFIX.length);
    return admin(req, res);
  }
  const match = /^\/cluster\/v1\/blobs\/([^/]+)$/.exec(path);
  if (req.method !== 'GET' || !match || !parseDigest(match[1]!)) return send(res, 404, 'not found\n');
  const digest = match[1]!;
  const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
  const opened = await openBlob(digest, start, deps);
  if (!opened) return send(res, 404, 'no fill and not stored here\n');
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
  if (opened.size !== undefined) {
    headers['x-blob-size'] = opened.size;
    headers['content-length'] = opened.size - start;
  }
  res.writeHead(start > 0 ? 206 : 200, headers);
  res.flushHeaders();
  try {
    await stream(opened.source, res);
  } finally {
    await opened.source.close();
  }
}

/** The running fill (joined at `start`), or the stored blob; undefined when neither is here. */
async function openBlob(
  digest: string,
  start: number,
  deps: EndpointDeps,
): Promise<{ source: ByteSource; size: number | undefined } | undefined> {
  const running = deps.localFill(digest);
  const fill = running instanceof Promise ? await running : running;
  if (fill && fill.state !== 'failed') {
    try {
      const end = fill.size === undefined ? Number.MAX_SAFE_INTEGER : fill.size - 1;
      return { source: fill.open({ start, end }), size: fill.size };
    } catch {
      // A relay that has moved past `start`: the store may have it by now.
    }
  }
  const stored = await deps.store.stat(digest);
  if (!stored || start > stored.size) return undefined;
  return { source: await deps.store.open(digest, { start, end: stored.size - 1 }), size: stored.size };
}

/** Copies `source` to `res` with backpressure; ends it at the source's end, throws on a failed read. */
async function stream(source: ByteSource, res: ServerResponse): Promise<void> {
  for (;;) {
    const buffer = Buffer.allocUnsafe(CHUNK);
    const count = await source.read(buffer);
    if (count === 0) break;
    if (res.destroyed) throw new Error('the replica went away');
    if (!res.write(buffer.subarray(0, count))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

function authorized(header: string | undefined, secret: string): boolean {
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${secret}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
}

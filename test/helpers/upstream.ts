// An in-process fake upstream registry over TLS on port 0: content in memory, hit counters per
// method + path, and switches for faults (fail next, require a token, reset mid-body, stall).
import { createHash } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { onTestFinished } from 'vitest';
import { upstreamPki } from './pki.ts';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

export interface FakeRegistry {
  readonly port: number;
  readonly host: string;
  /** `host:port`, as the proxy's intercept list and clients name it. */
  readonly authority: string;
  readonly requests: RecordedRequest[];
  hits(method: string, path: string): number;
  addBlob(content: Buffer): string;
  addManifest(name: string, tag: string, manifest: object, mediaType?: string): string;
  /**
   * Token auth as Docker Hub does it: every /v2/ request needs a Bearer token from the token
   * server at /token, which gives one to anyone (anonymous) and a user's own for Basic
   * `user:password` of `accounts` (401 for a wrong password). Repositories made private with
   * `makePrivate` need a user's token.
   */
  useTokenAuth(accounts: Record<string, string>): void;
  makePrivate(prefix: string): void;
  /** Tokens the token server issued, in order, with who they were for (undefined: anonymous). */
  readonly issued: Array<{ token: string; user: string | undefined; scope: string | null }>;
  /** Answer 401 with a Bearer challenge unless `Authorization: Bearer <token>` is sent. */
  requireToken(token: string | undefined): void;
  /** The next request gets this status and an OCI error body. */
  failNext(status: number): void;
  /** Blob GETs send this many bytes and then reset the connection. */
  resetBlobsAfter(bytes: number | undefined): void;
  /** Blob GETs send other bytes than the digest says (same length). */
  corruptBlobs(on: boolean): void;
  /** Blob GETs send headers and half the body, then wait for the returned release function. */
  holdBlobs(): () => void;
  /** Blob GETs answer 307 to `origin` + `/cdn/<digest>?sig=<random>`. */
  redirectBlobsTo(origin: string | undefined): void;
  /** A handler that takes over a path (exact match) for special cases. */
  route(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

export async function startFakeRegistry(options: { host?: string } = {}): Promise<FakeRegistry> {
  const host = options.host ?? '127.0.0.1';
  const pki = await upstreamPki();
  const { cert, key } = await pki.leaf(host);
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { body: Buffer; mediaType: string }>();
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const requests: RecordedRequest[] = [];
  let token: string | undefined;
  let failStatus: number | undefined;
  let resetAfter: number | undefined;
  let corrupt = false;
  let hold: Promise<void> | undefined;
  let redirectTo: string | undefined;
  let accounts: Record<string, string> | undefined;
  const privatePrefixes: string[] = [];
  const issued: Array<{ token: string; user: string | undefined; scope: string | null }> = [];

  const json = (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };
  const ociError = (
    res: ServerResponse,
    status: number,
    code: string,
    headers: Record<string, string> = {},
  ) => json(res, status, { errors: [{ code, message: code.toLowerCase() }] }, headers);

  const server = https.createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(chunks) });
      const special = routes.get(path.split('?')[0] ?? '');
      if (special) return special(req, res);
      if (failStatus !== undefined) {
        const status = failStatus;
        failStatus = undefined;
        return ociError(
          res,
          status,
          status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE',
          status === 429 ? { 'retry-after': '7' } : {},
        );
      }
      if (accounts !== undefined) {
        const url = new URL(path, 'https://x');
        if (url.pathname === '/token') {
          const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
          let user: string | undefined;
          if (basic !== undefined) {
            const [name = '', ...rest] = Buffer.from(basic, 'base64').toString().split(':');
            if (accounts[name] !== rest.join(':')) return ociError(res, 401, 'UNAUTHORIZED');
            user = name;
          }
          const issuedToken = `${user ?? 'anonymous'}-${Math.random().toString(36).slice(2)}`;
          issued.push({ token: issuedToken, user, scope: url.searchParams.get('scope') });
          return json(res, 200, { token: issuedToken, expires_in: 300 });
        }
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        const holder = issued.find((entry) => entry.token === bearer);
        const name = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(url.pathname)?.[1];
        const isPrivate = name !== undefined && privatePrefixes.some((prefix) => name.startsWith(prefix));
        if (!holder || (isPrivate && holder.user === undefined)) {
          const scope = name === undefined ? '' : `,scope="repository:${name}:pull"`;
          return ociError(res, 401, 'UNAUTHORIZED', {
            'www-authenticate': `Bearer realm="https://${host}:${port}/token",service="fake"${scope}`,
          });
        }
      }
      if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) {
        return ociError(res, 401, 'UNAUTHORIZED', {
          'www-authenticate': `Bearer realm="https://${host}:${port}/token",service="fake",scope="repository:x:pull"`,
        });
      }
      if (path === '/v2/' || path === '/v2')
        return json(res, 200, {}, { 'docker-distribution-api-version': 'registry/2.0' });
      const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
      if (blob?.[2] && redirectTo !== undefined && req.method === 'GET') {
        res.writeHead(307, {
          location: `${redirectTo}/cdn/${blob[2]}?sig=${Math.random().toString(36).slice(2)}`,
          'content-length': 0,
        });
        return res.end();
      }
      const cdn = /^\/cdn\/(sha256:[a-f0-9]{64})\?/.exec(path);
      if (cdn?.[1]) {
        const content = blobs.get(cdn[1]);
        if (!content) return ociError(res, 404, 'BLOB_UNKNOWN');
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': content.length });
        return res.end(content);
      }
      if (blob?.[2]) {
        const content = blobs.get(blob[2]);
        if (!content) return ociError(res, 404, 'BLOB_UNKNOWN');
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': content.length,
          'docker-content-digest': blob[2],
        });
        if (req.method === 'HEAD') return res.end();
        if (corrupt) return res.end(Buffer.alloc(content.length, 0x2a));
        if (hold) {
          const released = hold;
          const half = Math.floor(content.length / 2);
          res.write(content.subarray(0, half));
          void released.then(() => res.end(content.subarray(half)));
          return;
        }
        if (resetAfter !== undefined) {
          res.write(content.subarray(0, resetAfter), () => res.socket?.destroy());
          return;
        }
        return res.end(content);
      }
      const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
      if (manifest?.[1] && manifest[2]) {
        const entry = manifests.get(`${manifest[1]}:${manifest[2]}`) ?? manifests.get(manifest[2]);
        if (!entry) return ociError(res, 404, 'MANIFEST_UNKNOWN');
        res.writeHead(200, {
          'content-type': entry.mediaType,
          'content-length': entry.body.length,
          'docker-content-digest': sha256(entry.body),
        });
        return res.end(req.method === 'HEAD' ? undefined : entry.body);
      }
      const upload = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(path);
      if (upload?.[1] !== undefined) {
        if (req.method === 'POST') {
          res.writeHead(202, { location: `/v2/${upload[1]}/blobs/uploads/u1`, 'content-length': 0 });
          return res.end();
        }
        if (req.method === 'PUT') {
          const body = Buffer.concat(chunks);
          const digest = new URL(path, 'https://x').searchParams.get('digest') ?? '';
          if (digest !== sha256(body)) return ociError(res, 400, 'DIGEST_INVALID');
          blobs.set(digest, body);
          res.writeHead(201, { location: `/v2/${upload[1]}/blobs/${digest}`, 'content-length': 0 });
          return res.end();
        }
      }
      return ociError(res, 404, 'NAME_UNKNOWN');
    });
  });
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  onTestFinished(close);

  return {
    port,
    host,
    authority: `${host}:${port}`,
    requests,
    hits: (method, path) => requests.filter((r) => r.method === method && r.path === path).length,
    addBlob(content) {
      const digest = sha256(content);
      blobs.set(digest, content);
      return digest;
    },
    addManifest(name, tag, manifest, mediaType = 'application/vnd.oci.image.manifest.v1+json') {
      const body = Buffer.from(JSON.stringify(manifest));
      const digest = sha256(body);
      manifests.set(`${name}:${tag}`, { body, mediaType });
      manifests.set(`${name}:${digest}`, { body, mediaType });
      return digest;
    },
    requireToken: (value) => (token = value),
    failNext: (status) => (failStatus = status),
    resetBlobsAfter: (bytes) => (resetAfter = bytes),
    corruptBlobs: (on) => (corrupt = on),
    holdBlobs() {
      let release: () => void = () => undefined;
      hold = new Promise<void>((resolve) => (release = resolve));
      return () => {
        hold = undefined;
        release();
      };
    },
    redirectBlobsTo: (origin) => (redirectTo = origin),
    useTokenAuth: (given) => (accounts = given),
    makePrivate: (prefix) => privatePrefixes.push(prefix),
    issued,
    route: (path, handler) => routes.set(path, handler),
    close,
  };
}

// A token server of the distribution kind (docs/spec/auth/token.md), in process, for the token-auth
// registry: `GET /token?service=…&scope=repository:<name>:<actions>…` with optional Basic auth
// answers `{token, access_token, expires_in, issued_at}`, a JWT signed ES256 by a self-signed
// certificate that the registry trusts as its `rootcertbundle` (the certificate travels in the
// `x5c` header, which distribution 2.8 verifies against that bundle).
// Policy, like Docker Hub: anyone may pull `public/*`; the user e2e/e2e-secret may pull and push
// anything; anonymous requests and wrong passwords get a token with no access to anything else
// (an empty `access` list), so the registry answers 401 insufficient_scope. It does not do the
// OAuth2 POST form (`docker login`); the clients driven here use GET.
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import type { Pki } from './pki.ts';
import { runOk } from './processes.ts';

export const TOKEN_USER = 'e2e';
export const TOKEN_PASSWORD = 'e2e-secret';
/** Repositories under this prefix are readable by anyone, as Docker Hub's public images are. */
export const PUBLIC_PREFIX = 'public/';
const ISSUER = 'pullthrough-e2e-token-server';
const TOKEN_TTL_S = 300;

/** One entry of a token's `access` claim. */
export interface ResourceActions {
  type: string;
  name: string;
  actions: string[];
}

/** What the token server answered, for tests to quote: who asked, for what, and what they got. */
export interface TokenIssue {
  /** `e2e`, `(anonymous)`, or `e2e (wrong password)` etc. */
  who: string;
  scopes: string[];
  status: number;
  /** The `access` claim of the token handed out (absent when refused). */
  granted?: ResourceActions[];
  token?: string;
}

export interface TokenServer {
  /** `https://NAME/token`: the registry's `realm`. */
  realm: string;
  /** The registry's `service`, also the token's `aud`. */
  service: string;
  issuer: string;
  /** PEM of the signing certificate: the registry's `rootcertbundle`. */
  rootCertBundle: string;
  /** Every answer, in order. */
  issued: TokenIssue[];
  /** A token signed here without an HTTP round trip (for probes straight to the registry). */
  mint(subject: string, access: readonly ResourceActions[]): string;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  /** The name clients use for it (the realm's host); must be a SAN of the server certificate. */
  name: string;
  ip: string;
  port: number;
  /** The registry's name, used as `service`. */
  service: string;
  pki: Pki;
  /** Where the signing key and certificate are written. */
  dir: string;
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const signer = await makeSigner(options.dir);
  const issued: TokenIssue[] = [];
  const mint = (subject: string, access: readonly ResourceActions[]): string =>
    signJwt(signer, {
      iss: ISSUER,
      sub: subject,
      aud: options.service,
      ...times(),
      jti: randomBytes(16).toString('hex'),
      access,
    });

  const server = createServer(
    { cert: readFileSync(options.pki.serverCrt), key: readFileSync(options.pki.serverKey) },
    (req, res) => {
      const url = new URL(req.url ?? '/', `https://${options.name}`);
      const answer = (status: number, body: object, issue?: TokenIssue): void => {
        if (issue) issued.push({ ...issue, status });
        const text = JSON.stringify(body);
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      };
      if (url.pathname !== '/token') return answer(404, { details: 'not found' });
      if (req.method !== 'GET') return answer(405, { details: 'only GET is supported here' });
      const scopes = url.searchParams.getAll('scope').flatMap((scope) => scope.split(' ').filter(Boolean));
      if (url.searchParams.get('service') !== options.service) {
        return answer(400, { details: 'unknown service' }, { who: '(any)', scopes, status: 400 });
      }
      const caller = identify(req.headers.authorization);
      const granted = scopes.flatMap((scope) => grant(caller, scope));
      const token = mint(caller.subject, granted);
      answer(
        200,
        { token, access_token: token, expires_in: TOKEN_TTL_S, issued_at: new Date().toISOString() },
        { who: caller.who, scopes, status: 200, granted, token },
      );
    },
  );
  server.listen(options.port, options.ip);
  await once(server, 'listening');
  return {
    realm: `https://${options.name}/token`,
    service: options.service,
    issuer: ISSUER,
    rootCertBundle: signer.certFile,
    issued,
    mint,
    close: () => closeServer(server),
  };
}

interface Caller {
  /** The token's `sub`: the user when the password was right, else empty. */
  subject: string;
  /** For `TokenIssue.who`. */
  who: string;
  authenticated: boolean;
}

function identify(authorization: string | undefined): Caller {
  const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (basic === undefined) {
    return {
      subject: '',
      who: authorization ? '(unsupported credential)' : '(anonymous)',
      authenticated: false,
    };
  }
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? decoded : decoded.slice(0, colon);
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  if (user === TOKEN_USER && password === TOKEN_PASSWORD) {
    return { subject: user, who: user, authenticated: true };
  }
  return { subject: '', who: `${user} (wrong password)`, authenticated: false };
}

/** The part of one requested scope (`repository:<name>:<a>,<b>`) that `caller` may have. */
function grant(caller: Caller, scope: string): ResourceActions[] {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return [];
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  if (type !== 'repository') return [];
  const allowed = caller.authenticated ? ['pull', 'push'] : name.startsWith(PUBLIC_PREFIX) ? ['pull'] : [];
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((action) => allowed.includes(action));
  return actions.length === 0 ? [] : [{ type, name, actions }];
}

function times(): { iat: number; nbf: number; exp: number } {
  const now = Math.floor(Date.now() / 1000);
  // nbf a little in the past: the registry allows 60 s of skew, but says so in its log.
  return { iat: now, nbf: now - 5, exp: now + TOKEN_TTL_S };
}

interface Signer {
  key: KeyObject;
  /** base64 (not url) DER of the certificate, as `x5c` wants it. */
  x5c: string;
  certFile: string;
}

/** A P-256 key and a self-signed certificate for it (openssl), valid a week. */
async function makeSigner(dir: string): Promise<Signer> {
  const cnf = join(dir, 'token-signer.cnf');
  const keyFile = join(dir, 'token-signer.key');
  const certFile = join(dir, 'token-signer.crt');
  writeFileSync(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      '[ext]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // a positive DER INTEGER: Go rejects negative serials
  await runOk(
    'openssl',
    [
      'req',
      '-x509',
      '-config',
      cnf,
      '-extensions',
      'ext',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-noenc',
      '-days',
      '7',
      '-subj',
      `/CN=${ISSUER}`,
      '-set_serial',
      `0x${serial.toString('hex')}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } },
  );
  return {
    key: createPrivateKey(readFileSync(keyFile)),
    x5c: new X509Certificate(readFileSync(certFile)).raw.toString('base64'),
    certFile,
  };
}

function base64url(value: Buffer | string): string {
  return Buffer.from(value).toString('base64url');
}

/** A compact JWS: ES256 signatures are the raw r||s pair (RFC 7518 §3.4), not DER. */
function signJwt(signer: Signer, claims: object): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [signer.x5c] };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${base64url(signature)}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

// Proxy authentication: `Proxy-Authorization: Basic` checked against an htpasswd file of
// bcrypt hashes (`htpasswd -B`). Answers are remembered by a hash of the header for a few
// minutes, so a client opening many connections costs one bcrypt comparison, not one each;
// bcryptjs compares asynchronously, so a login never stalls the streams of other clients.
// Beside the file's users, the process's own credential (InternalCredential) for its own
// requests through the proxy port.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';

export class HtpasswdError extends Error {
  override readonly name = 'HtpasswdError';
}

/** What the proxy answers when credentials are missing or wrong. */
export const PROXY_AUTHENTICATE = 'Basic realm="pullthrough", charset="UTF-8"';

/**
 * The Proxy-Authorization of this process's own requests through its proxy port (the dashboard's
 * warm jobs), so that proxy.htpasswd need not list a user for them: 32 random bytes made at
 * start, held in memory only, never written, logged or answered; a restart makes another.
 */
export class InternalCredential {
  static readonly USER = 'pullthrough-internal';
  readonly #header = `Basic ${Buffer.from(`${InternalCredential.USER}:${randomBytes(32).toString('base64url')}`).toString('base64')}`;

  /** The header value, for this process's own proxy client only. */
  header(): string {
    return this.#header;
  }

  /** Whether `header` is this credential, in constant time. */
  matches(header: string | undefined): boolean {
    const digest = (text: string) => createHash('sha256').update(text).digest();
    return header !== undefined && timingSafeEqual(digest(header), digest(this.#header));
  }
}

export class ProxyAuth {
  readonly #users: ReadonlyMap<string, string>;
  readonly #internal: InternalCredential | undefined;
  readonly #verified = new LRUCache<string, boolean>({ max: 10_000, ttl: 5 * 60_000 });

  constructor(users: ReadonlyMap<string, string>, internal?: InternalCredential) {
    this.#users = users;
    this.#internal = internal;
  }

  /** Reads `file`; every line is `user:$2y$…` (or $2a$/$2b$); blank lines and # comments are skipped. */
  static async fromFile(file: string, internal?: InternalCredential): Promise<ProxyAuth> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new HtpasswdError(`cannot read htpasswd file ${file} (${(error as NodeJS.ErrnoException).code})`);
    }
    return new ProxyAuth(parseHtpasswd(text, file), internal);
  }

  get users(): number {
    return this.#users.size;
  }

  /** The user named by a valid `Proxy-Authorization` header, or undefined. */
  async check(header: string | undefined): Promise<string | undefined> {
    if (this.#internal?.matches(header)) return InternalCredential.USER;
    const credentials = parseBasic(header);
    if (!credentials) return undefined;
    const key = createHash('sha256')
      .update(header ?? '')
      .digest('base64url');
    const known = this.#verified.get(key);
    if (known !== undefined) return known ? credentials.user : undefined;
    const hash = this.#users.get(credentials.user);
    // A missing user still costs a comparison, so timing does not tell which users exist.
    const ok = await bcrypt.compare(credentials.password, hash ?? DUMMY_HASH);
    const valid = ok && hash !== undefined;
    this.#verified.set(key, valid);
    return valid ? credentials.user : undefined;
  }
}

// bcrypt of a random string at cost 10, compared against for unknown users.
const DUMMY_HASH = '$2b$10$CwTycUXWue0Thq9StjUM0uJ8.Vqz6YWf8t7Q9n4bZ0I6/4xQG0C6.';

export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new HtpasswdError(
        `${file} line ${index + 1}: expected user:bcrypt-hash (make one with: htpasswd -nB user)`,
      );
    }
    users.set(user, hash.replace(/^\$2y\$/, '$2b$'));
  });
  return users;
}

/** The user name a `Proxy-Authorization: Basic` header claims (for logs), or undefined. */
export function claimedUser(header: string | undefined): string | undefined {
  return parseBasic(header)?.user.slice(0, 100);
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// Who may use the admin API: `Authorization: Bearer <token>` against the configured token,
// compared in constant time. Both sides are hashed first, so the comparison takes as long
// whatever the length of what was sent (timingSafeEqual wants equal lengths).
import { createHash, timingSafeEqual } from 'node:crypto';

export class AdminToken {
  readonly #hash: Buffer;

  constructor(token: string) {
    this.#hash = hash(token);
  }

  /** Whether an Authorization header value carries the token. */
  allows(authorization: string | undefined): boolean {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    // Hashed and compared even when absent: a missing header costs what a wrong one does.
    const sent = hash(match?.[1] ?? '');
    return timingSafeEqual(sent, this.#hash) && match !== null;
  }
}

function hash(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

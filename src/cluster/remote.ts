// The client side of the internal endpoint (endpoint.ts): a blob's bytes from the replica that
// fetches it, from byte `start` on, with the blob's size when it is known. Any failure (refused,
// unreachable, no such fill) is `undefined`: the caller decides whether to wait or take over.
import { Agent, request } from 'undici';
import type { Member } from './members.ts';

export interface RemoteBody {
  readonly body: AsyncIterable<Buffer>;
  /** The whole blob's size, when the fill knows it. */
  readonly size: number | undefined;
}

/** The blob's path on the internal endpoint. */
export function blobPath(digest: string): string {
  return `/cluster/v1/blobs/${digest}`;
}

export class Remote {
  readonly #secret: string;
  // Headers wait on the holder's own upstream request; bytes may pause while upstream does.
  readonly #agent = new Agent({ headersTimeout: 60_000, bodyTimeout: 30_000, connectTimeout: 5_000 });

  constructor(secret: string) {
    this.#secret = secret;
  }

  async open(holder: Member, digest: string, start: number): Promise<RemoteBody | undefined> {
    try {
      const { statusCode, headers, body } = await request(`${holder.url}${blobPath(digest)}`, {
        dispatcher: this.#agent,
        headers: {
          authorization: `Bearer ${this.#secret}`,
          ...(start > 0 ? { range: `bytes=${start}-` } : {}),
        },
      });
      if (statusCode !== (start > 0 ? 206 : 200)) {
        await body.dump().catch(() => undefined);
        return undefined;
      }
      const size = Number(headers['x-blob-size']);
      return { body, size: Number.isSafeInteger(size) ? size : undefined };
    } catch {
      return undefined;
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

// Reading a small upstream body (a manifest, a token response) whole, with a cap, so that an
// upstream sending too much can never make the proxy buffer it.
import type { UpstreamResponse } from './types.ts';

/** The whole body, or undefined once it passes `maxBytes` (the rest is discarded). */
export async function readCapped(response: UpstreamResponse, maxBytes: number): Promise<Buffer | undefined> {
  const declared = Number(response.headers['content-length'] ?? Number.NaN);
  if (declared > maxBytes) {
    // dump() reads a little and closes the body without an unhandled 'error' (destroy() would
    // make undici emit RequestAbortedError on a stream nobody listens to).
    await response.body.dump();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    // Leaving the loop makes the iterator destroy the body, with its own error handling.
    if (size > maxBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

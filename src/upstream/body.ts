// Reading a small upstream body (a manifest, a token response) whole, with a cap, so that an
// upstream sending too much can never make the proxy buffer it.
import type { UpstreamResponse } from './client.ts';

/** The whole body, or undefined (and the body destroyed) once it passes `maxBytes`. */
export async function readCapped(response: UpstreamResponse, maxBytes: number): Promise<Buffer | undefined> {
  const declared = Number(response.headers['content-length'] ?? Number.NaN);
  if (declared > maxBytes) {
    response.body.destroy();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      response.body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

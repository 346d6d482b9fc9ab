// The proof that a pull went through pullthrough: its own request lines for the image's manifest
// (by tag or by digest), its config blob and its layer blob, all answered 200. Waiting for every
// one of them also means no line of this pull turns up after the caller's next `mark()`: the proxy
// logs a request when it ends, which can be a moment after the client has exited.
import { expect } from 'vitest';
import type { TestImage } from './image.ts';
import { isRequest, sameHost, type ProxyLog, type RequestLine } from './proxy.ts';

export async function expectPullLogged(
  log: ProxyLog,
  host: string,
  image: TestImage,
  from: number,
): Promise<RequestLine[]> {
  const base = `/v2/${image.repository}`;
  const manifestPaths = [`${base}/manifests/${image.tag}`, `${base}/manifests/${image.manifest.digest}`];
  const manifest = await log.waitForLine(
    (line): line is RequestLine =>
      isRequest(line) &&
      line.method === 'GET' &&
      manifestPaths.includes(line.path) &&
      sameHost(line.host, host),
    { from },
  );
  expect(manifest.status).toBe(200);
  for (const digest of [image.config.digest, image.layer.digest]) {
    const blob = await log.waitForRequest(host, 'GET', `${base}/blobs/${digest}`, { from });
    expect(blob.status).toBe(200);
  }
  return log.requests(host, from);
}

/**
 * Asserts that every blob GET among `lines` was answered from the cache (`cache: hit`; a client
 * that closes early may add `aborted`, but the cache decision is logged either way). Returns
 * `layer hit, config hit`-style text for a report.
 */
export function expectBlobsFromCache(lines: readonly RequestLine[], image: TestImage): string {
  const blobs = lines.filter((line) => line.method === 'GET' && line.path.includes('/blobs/'));
  for (const line of blobs) expect(line['cache'], JSON.stringify(line)).toBe('hit');
  return blobs
    .map(
      (line) =>
        `${line.path.endsWith(image.layer.digest) ? 'layer' : 'config'} ${String(line['cache'])}` +
        (line['aborted'] === true ? ' (aborted)' : ''),
    )
    .join(', ');
}

// The proof that a pull went through pullthrough: its own request lines for the image's manifest
// (by tag or by digest) and its layer blob, both answered 200.
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
  const blob = await log.waitForRequest(host, 'GET', `${base}/blobs/${image.layer.digest}`, { from });
  expect(blob.status).toBe(200);
  return log.requests(host, from);
}

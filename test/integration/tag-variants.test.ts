// One tag, two answers: upstream negotiates by Accept (an index for clients that take one, a
// Docker schema 2 manifest for those that do not). The cache keeps both resolutions, so clients
// of both kinds are revalidated without a GET and served offline what upstream gave them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../helpers/proxy.ts';
import { sha256, startFakeRegistry } from '../helpers/upstream.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const BROAD = [OCI_INDEX, OCI_MANIFEST, DOCKER_V2].join(', ');

const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
const single = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_V2, config: { size: 1 }, layers: [] }),
);

/** Docker Hub's negotiation: the index when it is accepted, else the amd64 schema 2 manifest. */
function negotiate(req: IncomingMessage, res: ServerResponse): void {
  const wantsIndex = (req.headers.accept ?? '').includes(OCI_INDEX);
  const body = wantsIndex ? index : single;
  res.writeHead(200, {
    'content-type': wantsIndex ? OCI_INDEX : DOCKER_V2,
    'content-length': body.length,
    'docker-content-digest': sha256(body),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

describe('tag records by Accept', () => {
  it('keeps what the tag resolves to for each kind of client', async () => {
    const upstream = await startFakeRegistry();
    upstream.route('/v2/lib/multi/manifests/v1', negotiate);
    const proxy = await startProxy({ registries: [upstream.authority] });
    const pull = async (accept: string) => {
      const res = await proxy.fetch(upstream.authority, '/v2/lib/multi/manifests/v1', {
        headers: { accept },
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return {
        status: res.statusCode,
        cache: res.headers['x-cache'],
        type: res.headers['content-type'],
        body,
      };
    };

    expect(await pull(BROAD)).toMatchObject({ status: 200, cache: 'MISS', type: OCI_INDEX });
    expect(await pull(DOCKER_V2)).toMatchObject({ status: 200, cache: 'MISS', type: DOCKER_V2 });
    // Neither kind of client costs a GET any more: each is revalidated against its own record.
    expect(await pull(BROAD)).toMatchObject({ cache: 'REVALIDATED', type: OCI_INDEX });
    expect(await pull(DOCKER_V2)).toMatchObject({ cache: 'REVALIDATED', type: DOCKER_V2 });
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(2);

    await upstream.close();
    const schema2Only = await pull(DOCKER_V2);
    expect(schema2Only).toMatchObject({ status: 200, cache: 'STALE', type: DOCKER_V2 });
    expect(schema2Only.body.equals(single)).toBe(true);
    const broad = await pull(BROAD);
    expect(broad).toMatchObject({ status: 200, cache: 'STALE', type: OCI_INDEX });
    expect(broad.body.equals(index)).toBe(true);
  });
});

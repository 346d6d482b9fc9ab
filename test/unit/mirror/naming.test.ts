// The mirror's naming table: which registry a request names (?ns=, a path prefix, mirror.default),
// the upstream path it becomes, and what is refused before anything is asked upstream.
import { describe, expect, it } from 'vitest';
import { HostRules } from '../../../src/http/host-rules.ts';
import { nameTarget, type NamingRules } from '../../../src/mirror/naming.ts';

const LIST = ['docker.io', 'registry.test', 'registry.test:5000', '*.example.com', 'ghcr.io'];
const hosts = new HostRules(LIST.map((pattern) => ({ pattern, value: true })));
const rules = (defaultRegistry: string | null = null): NamingRules => ({
  served: (host, port) => hosts.match(host, port) === true,
  registries: LIST,
  defaultRegistry,
});
const https = (host: string, port = 443) => ({ host, port, scheme: 'https' });

describe('mirror naming', () => {
  it.each([
    // containerd's hosts.toml: the upstream's own path, the registry in ?ns=, other parameters kept
    ['/v2/e2e/small/manifests/v1?ns=registry.test', https('registry.test'), '/v2/e2e/small/manifests/v1'],
    [
      '/v2/e2e/small/tags/list?n=10&ns=registry.test&last=a',
      https('registry.test'),
      '/v2/e2e/small/tags/list?n=10&last=a',
    ],
    [
      '/v2/library/alpine/manifests/3?ns=docker.io',
      https('registry-1.docker.io'),
      '/v2/library/alpine/manifests/3',
    ],
    [
      '/v2/e2e/small/blobs/sha256:ab?ns=registry.test%3A5000',
      https('registry.test', 5000),
      '/v2/e2e/small/blobs/sha256:ab',
    ],
    // a registry prefix: registries.conf locations with a namespace, or by hand
    ['/v2/registry.test/e2e/small/manifests/v1', https('registry.test'), '/v2/e2e/small/manifests/v1'],
    [
      '/v2/registry.test:5000/e2e/small/blobs/sha256:ab',
      https('registry.test', 5000),
      '/v2/e2e/small/blobs/sha256:ab',
    ],
    ['/v2/ghcr.io/org/app/manifests/1.0', https('ghcr.io'), '/v2/org/app/manifests/1.0'],
    ['/v2/a.example.com/x/manifests/1', https('a.example.com'), '/v2/x/manifests/1'],
    ['/v2/REGISTRY.test/e2e/small/manifests/v1', https('registry.test'), '/v2/e2e/small/manifests/v1'],
    // Docker Hub's official images, by any naming
    ['/v2/docker.io/alpine/manifests/3', https('registry-1.docker.io'), '/v2/library/alpine/manifests/3'],
    [
      '/v2/docker.io/bitnami/redis/manifests/7',
      https('registry-1.docker.io'),
      '/v2/bitnami/redis/manifests/7',
    ],
    // a registry prefix with nothing after it is the upstream's own ping
    ['/v2/registry.test/', https('registry.test'), '/v2/'],
  ])('%s → %o %s', (url, destination, upstreamUrl) => {
    expect(nameTarget(url, rules())).toEqual({ kind: 'upstream', destination, url: upstreamUrl });
  });

  it('names bare repositories with mirror.default, as dockerd registry-mirrors sends them', () => {
    expect(nameTarget('/v2/library/alpine/manifests/3', rules('docker.io'))).toMatchObject({
      destination: https('registry-1.docker.io'),
      url: '/v2/library/alpine/manifests/3',
    });
    expect(nameTarget('/v2/alpine/blobs/sha256:ab', rules('docker.io'))).toMatchObject({
      url: '/v2/library/alpine/blobs/sha256:ab',
    });
    expect(nameTarget('/v2/e2e/small/manifests/v1', rules('registry.test:5000'))).toMatchObject({
      destination: https('registry.test', 5000),
      url: '/v2/e2e/small/manifests/v1',
    });
    // ?ns= and a prefix win over the default
    expect(nameTarget('/v2/registry.test/e2e/small/manifests/v1', rules('docker.io'))).toMatchObject({
      destination: https('registry.test'),
    });
    expect(nameTarget('/v2/e2e/small/manifests/v1?ns=ghcr.io', rules('docker.io'))).toMatchObject({
      destination: https('ghcr.io'),
    });
  });

  it('answers the /v2/ ping itself, whatever it names', () => {
    expect(nameTarget('/v2/', rules())).toEqual({ kind: 'ping' });
    expect(nameTarget('/v2', rules())).toEqual({ kind: 'ping' });
    expect(nameTarget('/v2/?ns=registry.test', rules())).toEqual({ kind: 'ping' });
  });

  it('refuses registries not on the list, naming the list', () => {
    for (const url of [
      '/v2/evil.test/x/manifests/1',
      '/v2/x/manifests/1?ns=evil.test',
      '/v2/registry.test:5001/x/manifests/1',
      '/v2/localhost/x/manifests/1',
      '/v2/example.com/x/manifests/1',
    ]) {
      const target = nameTarget(url, rules());
      expect(target.kind, url).toBe('denied');
      expect(target).toMatchObject({ message: expect.stringContaining(LIST.join(', ')) as string });
    }
    expect(nameTarget('/v2/alpine/manifests/3', rules('quay.io'))).toMatchObject({
      kind: 'denied',
      registry: 'quay.io',
    });
  });

  it('refuses names that are no registry, bare names without a default, and paths outside /v2/', () => {
    expect(nameTarget('/v2/x/manifests/1?ns=bad_host!', rules())).toMatchObject({ kind: 'invalid' });
    expect(nameTarget('/v2/registry.test:99999/x/manifests/1', rules())).toMatchObject({ kind: 'invalid' });
    expect(nameTarget('/v2/x/manifests/1?ns=%E0%A4%A', rules())).toMatchObject({ kind: 'invalid' });
    expect(nameTarget('/v2/alpine/manifests/3', rules())).toMatchObject({ kind: 'unnamed' });
    expect(nameTarget('/healthz', rules())).toMatchObject({ kind: 'unnamed' });
    expect(nameTarget('http://registry.test/v2/x/manifests/1', rules())).toMatchObject({ kind: 'unnamed' });
  });
});

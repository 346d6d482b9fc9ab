// Mirror-mode node configuration: one hosts.toml per registry for containerd, registries.conf
// mirror entries for CRI-O/podman (insecure for plain HTTP), dockerd's registry-mirrors, and no
// way for a mirror URL to put anything into those files but a URL.
import { describe, expect, it } from 'vitest';
import { mirrorSetup, parseMirrorUrl } from '../../../src/setup/mirror.ts';

const REGISTRIES = ['docker.io', 'ghcr.io', 'registry.test:5000', '*.example.com'];
const HTTP = { scheme: 'http', authority: 'cache:5000' } as const;

describe('mirror setup', () => {
  it('containerd: a hosts.toml per registry naming the mirror for pull and resolve', () => {
    const text = mirrorSetup('containerd', HTTP, REGISTRIES, null);
    const host = '[host."http://cache:5000"]\n  capabilities = ["pull", "resolve"]';
    expect(text).toContain(
      `# /etc/containerd/certs.d/docker.io/hosts.toml\nserver = "https://registry-1.docker.io"\n\n${host}`,
    );
    expect(text).toContain(
      `# /etc/containerd/certs.d/ghcr.io/hosts.toml\nserver = "https://ghcr.io"\n\n${host}`,
    );
    expect(text).toContain(
      `# /etc/containerd/certs.d/registry.test:5000/hosts.toml\nserver = "https://registry.test:5000"`,
    );
    expect(text).not.toContain('certs.d/*.example.com');
    expect(text).toContain('Not listed (a mirror entry names one registry): *.example.com');
  });

  it.each(['crio', 'podman'] as const)(
    '%s: registries.conf mirror entries with the registry as namespace',
    (client) => {
      const text = mirrorSetup(client, HTTP, REGISTRIES, null);
      expect(text).toContain(
        '[[registry]]\nprefix = "ghcr.io"\nlocation = "ghcr.io"\n[[registry.mirror]]\nlocation = "cache:5000/ghcr.io"\ninsecure = true\n',
      );
      expect(text).toContain('location = "cache:5000/docker.io"');
      expect(text).not.toContain('location = "cache:5000/registry.test:5000"');
      expect(text).toContain("Not listed (a location's namespace cannot hold a port): registry.test:5000");
      expect(mirrorSetup(client, { scheme: 'https', authority: 'cache' }, REGISTRIES, null)).not.toContain(
        'insecure',
      );
    },
  );

  it('docker: registry-mirrors (Docker Hub only), insecure for plain HTTP, and a warning without mirror.default', () => {
    const text = mirrorSetup('docker', HTTP, REGISTRIES, 'docker.io');
    const json = text.slice(text.indexOf('{'));
    expect(JSON.parse(json)).toEqual({
      'registry-mirrors': ['http://cache:5000'],
      'insecure-registries': ['cache:5000'],
    });
    expect(text).not.toContain('WARNING');
    expect(mirrorSetup('docker', HTTP, REGISTRIES, null)).toContain(
      'WARNING: mirror.default is not set: set it to docker.io',
    );
    expect(mirrorSetup('docker', HTTP, ['ghcr.io'], 'docker.io')).toContain(
      'WARNING: docker.io is not on the registries list',
    );
  });

  it('reads only http(s)://host[:port] as a mirror URL', () => {
    expect(parseMirrorUrl('http://Cache:5000/')).toEqual({ scheme: 'http', authority: 'cache:5000' });
    expect(parseMirrorUrl('https://[fd00::1]:5000')).toEqual({
      scheme: 'https',
      authority: '[fd00::1]:5000',
    });
    for (const bad of [
      'cache:5000',
      'ftp://cache',
      'http://cache:5000/path',
      'http://a"b',
      'http://u:p@cache',
      'http://cache\n',
    ]) {
      expect(parseMirrorUrl(bad), bad).toBeUndefined();
    }
  });
});

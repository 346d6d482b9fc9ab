import { describe, expect, it } from 'vitest';
import { parsePin, Pins } from '../../../src/config/pins.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('pin patterns', () => {
  it('parses references and repository globs, normalising Docker Hub names as docker does', () => {
    expect(parsePin('registry.k8s.io/pause:*')).toMatchObject({
      registry: 'registry.k8s.io',
      repository: 'pause',
      tag: undefined,
    });
    expect(parsePin('docker.io/library/postgres:16')).toMatchObject({
      registry: 'docker.io',
      repository: 'library/postgres',
      tag: '16',
    });
    expect(parsePin('postgres:16')).toMatchObject({ registry: 'docker.io', repository: 'library/postgres' });
    expect(parsePin('docker.io/postgres')).toMatchObject({ repository: 'library/postgres', tag: undefined });
    expect(parsePin('bitnami/redis:7*')).toMatchObject({
      registry: 'docker.io',
      repository: 'bitnami/redis',
    });
    expect(parsePin('ghcr.io/org/*')).toMatchObject({ registry: 'ghcr.io', repository: 'org/*' });
    expect(parsePin('registry.example:5000/team/app:v1')).toMatchObject({
      registry: 'registry.example:5000',
      repository: 'team/app',
      tag: 'v1',
    });
    expect(parsePin('localhost/app')).toMatchObject({ registry: 'localhost', repository: 'app' });
    expect(parsePin(`quay.io/org/app@${DIGEST}`)).toMatchObject({ digest: DIGEST, tag: undefined });
  });

  it('refuses what is not a pin', () => {
    for (const bad of [
      '',
      'ghcr.io/',
      'ghcr.io/Org/App',
      'ghcr.io/org/app:',
      'ghcr.io/org/app:bad tag',
      'ghcr.io/org/app@sha256:short',
      `ghcr.io/org/app:v1@${DIGEST}`,
      'https://ghcr.io/org/app',
      'ghcr.io/org//app',
      'bad_host.io:99/x',
    ]) {
      expect(parsePin(bad), bad).toBeUndefined();
    }
  });
});

describe('Pins', () => {
  const pins = new Pins([
    'registry.k8s.io/pause:*',
    'docker.io/library/postgres:16',
    'ghcr.io/org/*',
    'registry.example:5000/team/app:v1.*',
    `quay.io/x/y@${DIGEST}`,
  ]);

  it('matches tags by registry host and port, repository glob and tag glob', () => {
    expect(pins.tag('registry.k8s.io:443', 'pause', '3.10')).toBe(true);
    expect(pins.tag('registry.k8s.io:443', 'pause-not', '3.10')).toBe(false);
    expect(pins.tag('registry.k8s.io:5000', 'pause', '3.10')).toBe(false);
    expect(pins.tag('ghcr.io:443', 'org/app', 'latest')).toBe(true);
    expect(pins.tag('ghcr.io:443', 'org/team/app', 'latest')).toBe(true);
    expect(pins.tag('ghcr.io:443', 'other/app', 'latest')).toBe(false);
    expect(pins.tag('registry.example:5000', 'team/app', 'v1.2')).toBe(true);
    expect(pins.tag('registry.example:5000', 'team/app', 'v2.0')).toBe(false);
    expect(pins.tag('registry.example:443', 'team/app', 'v1.2')).toBe(false);
  });

  it('docker.io stands for Docker Hub hosts, as in `registries`', () => {
    expect(pins.tag('registry-1.docker.io:443', 'library/postgres', '16')).toBe(true);
    expect(pins.tag('index.docker.io:443', 'library/postgres', '16')).toBe(true);
    expect(pins.tag('registry-1.docker.io:443', 'library/postgres', '17')).toBe(false);
    expect(pins.tag('docker.example.com:443', 'library/postgres', '16')).toBe(false);
    expect(new Pins(['postgres']).repository('registry-1.docker.io:443', 'library/postgres')).toBe(true);
  });

  it('pins whole repositories only for patterns without a tag, and digests wherever they came from', () => {
    expect(pins.repository('registry.k8s.io:443', 'pause')).toBe(true);
    expect(pins.repository('ghcr.io:443', 'org/app')).toBe(true);
    expect(pins.repository('registry-1.docker.io:443', 'library/postgres')).toBe(false);
    expect(pins.repository('quay.io:443', 'x/y')).toBe(false);
    expect([...pins.digests]).toEqual([DIGEST]);
    expect(pins.empty).toBe(false);
    expect(new Pins([]).empty).toBe(true);
  });

  it('bracketed IPv6 authorities and malformed ones', () => {
    expect(new Pins(['*.corp.example/app']).tag('r.corp.example:443', 'app', 'x')).toBe(true);
    expect(pins.tag('[::1]:5000', 'pause', 'x')).toBe(false);
    expect(pins.tag('not an authority', 'pause', 'x')).toBe(false);
  });
});

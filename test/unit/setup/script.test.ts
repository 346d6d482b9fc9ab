// The setup scripts: valid bash for every client, the proxy setting each client reads (a systemd
// drop-in, podman's containers.conf), the NO_PROXY it needs, and no way for a proxy URL or a Host
// header to put anything into the script but a URL.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLIENTS, planFor } from '../../../src/setup/clients.ts';
import { parseProxyUrl, proxyUrlFromHost, setupScript } from '../../../src/setup/script.ts';

function bashSyntax(script: string): { status: number | null; stderr: string } {
  const result = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

describe('setup scripts', () => {
  it.each(CLIENTS)('%s: valid bash that writes the proxy setting and trusts the CA', (client) => {
    const script = setupScript(planFor(client), 'http://proxy.example:3128', 'pullthrough setup');
    expect(bashSyntax(script)).toEqual({ status: 0, stderr: '' });
    expect(script).toMatch(/^#!\/usr\/bin\/env bash\n/);
    expect(script).toContain("PROXY='http://proxy.example:3128'");
    expect(script).toContain('"$PROXY/ca.crt"');
    expect(script).toContain('update-ca-certificates');
    expect(script).toContain('NO_PROXY=localhost,127.0.0.0/8,::1');
  });

  it('daemons get a systemd drop-in and a restart; podman gets containers.conf and none', () => {
    const units = { docker: 'docker', containerd: 'containerd', crio: 'crio', buildkit: 'buildkit' } as const;
    for (const [client, unit] of Object.entries(units)) {
      const script = setupScript(planFor(client as keyof typeof units), 'http://p:3128', 'x');
      expect(script).toContain(
        `put /etc/systemd/system/${unit}.service.d/http-proxy.conf << 'EOF'\n[Service]\n`,
      );
      expect(script).toContain('Environment="HTTPS_PROXY=http://p:3128"\nEnvironment="NO_PROXY=');
      expect(script).toMatch(new RegExp(`systemctl daemon-reload\\nsystemctl restart ${unit}\\n`));
    }
    const podman = setupScript(planFor('podman'), 'http://p:3128', 'x');
    expect(podman).toContain(
      "put /etc/containers/containers.conf.d/pullthrough-proxy.conf << 'EOF'\n[engine]\n" +
        'env = ["HTTP_PROXY=http://p:3128", "HTTPS_PROXY=http://p:3128", "NO_PROXY=localhost,127.0.0.0/8,::1"]\nEOF\n',
    );
    expect(podman).not.toContain('systemctl');
  });

  it('kubernetes: the runtime of the nodes, with the cluster ranges and service names direct', () => {
    const containerd = setupScript(planFor('kubernetes'), 'http://p:3128', 'x');
    expect(containerd).toContain(
      'Environment="NO_PROXY=localhost,127.0.0.0/8,::1,10.244.0.0/16,10.96.0.0/12,.svc,.cluster.local"',
    );
    expect(containerd).toContain('systemctl restart containerd\n');
    const crio = setupScript(
      planFor('kubernetes', {
        runtime: 'crio',
        clusterCidr: '10.42.0.0/16',
        serviceCidr: '10.43.0.0/16',
        noProxy: ['registry.internal'],
      }),
      'http://p:3128',
      'x',
    );
    expect(crio).toContain(
      'Environment="NO_PROXY=localhost,127.0.0.0/8,::1,registry.internal,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local"',
    );
    expect(crio).toContain('put /etc/systemd/system/crio.service.d/http-proxy.conf');
    expect(crio).toContain('systemctl restart crio\n');
  });

  it('writes a percent-encoded password as %% in a unit file, where systemd expands %', () => {
    const script = setupScript(planFor('docker'), 'http://u:p%40ss@p:3128', 'x');
    expect(script).toContain('Environment="HTTPS_PROXY=http://u:p%%40ss@p:3128"');
    expect(script).toContain("PROXY='http://u:p%40ss@p:3128'");
  });

  it('takes only plain http://[user:pass@]host[:port] proxy URLs and Host headers', () => {
    expect(parseProxyUrl('http://10.0.0.5:3128/')).toBe('http://10.0.0.5:3128');
    expect(parseProxyUrl('http://[fd00::5]:3128')).toBe('http://[fd00::5]:3128');
    expect(parseProxyUrl('http://alice:s3cret@proxy.corp:3128')).toBe('http://alice:s3cret@proxy.corp:3128');
    for (const bad of [
      'https://p:3128',
      'p:3128',
      'http://p:3128/path',
      "http://p'$(id)':3128",
      'http://p:3128"; rm -rf /',
      'http://a b:3128',
      'http://`id`:3128',
      'http://u:p$x@p:3128',
    ])
      expect(parseProxyUrl(bad), bad).toBeUndefined();
    expect(proxyUrlFromHost('10.0.0.5:3128')).toBe('http://10.0.0.5:3128');
    expect(proxyUrlFromHost('proxy.corp')).toBe('http://proxy.corp');
    for (const bad of [undefined, '', 'p:3128; id', "p'", 'p:3128/x', '$(id)', 'u@p:3128'])
      expect(proxyUrlFromHost(bad), String(bad)).toBeUndefined();
  });
});

// The setup scripts run for real, in a throwaway root (PULLTHROUGH_SETUP_ROOT) with systemctl and
// update-ca-certificates stubbed on PATH: GET /setup/systemd from a running proxy (its URL taken
// from the request's Host) and `pullthrough setup docker|podman` write the proxy setting and the
// proxy's own CA, run the commands in order, and a second run leaves the same files.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/proxy.ts';
import { tempDir } from '../helpers/tmp.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

/** A root to write into, and stubs that record each command they stand for. */
async function throwawayHost(): Promise<{ root: string; bin: string; commands: () => Promise<string[]> }> {
  const dir = await tempDir();
  const root = path.join(dir, 'root');
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'commands.log');
  await mkdir(root);
  await mkdir(bin);
  for (const name of ['systemctl', 'update-ca-certificates']) {
    await writeFile(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> '${log}'\n`);
    await chmod(path.join(bin, name), 0o755);
  }
  const commands = async () =>
    (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
  return { root, bin, commands };
}

/** Runs `script` with bash as the host would, into `root`. */
async function runScript(script: string, host: { root: string; bin: string }): Promise<string> {
  const child = spawn('bash', ['-s'], {
    env: { PATH: `${host.bin}:/usr/bin:/bin`, PULLTHROUGH_SETUP_ROOT: host.root, HOME: host.root },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(script);
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code, output).toBe(0);
  return output;
}

/** Every file under `root`: its path, mode and content. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const mode = ((await stat(file)).mode & 0o777).toString(8);
    files[path.relative(root, file)] = `${mode} ${await readFile(file, 'utf8')}`;
  }
  return files;
}

async function cliOutput(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return stdout;
}

function expectDockerHost(files: Record<string, string>, proxy: TestProxy, url: string): void {
  expect(Object.keys(files).sort()).toEqual([
    'etc/systemd/system/docker.service.d/http-proxy.conf',
    'usr/local/share/ca-certificates/pullthrough.crt',
  ]);
  expect(files['etc/systemd/system/docker.service.d/http-proxy.conf']).toBe(
    '644 [Service]\n' +
      `Environment="HTTP_PROXY=${url}"\n` +
      `Environment="HTTPS_PROXY=${url}"\n` +
      'Environment="NO_PROXY=localhost,127.0.0.0/8,::1"\n',
  );
  expect(files['usr/local/share/ca-certificates/pullthrough.crt']).toBe(
    `644 ${proxy.app.ca.certPem.trimEnd()}\n`,
  );
}

describe('setup scripts, run', () => {
  it('GET /setup/systemd: the docker script for the proxy the request reached, idempotent', async () => {
    const proxy = await startProxy();
    const host = `127.0.0.1:${proxy.port}`;
    const res = await request(`${proxy.url}/setup/systemd`, { headers: { host } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/x-shellscript; charset=utf-8');
    const script = await res.body.text();
    expect(script).toContain(`curl -fsS http://${host}/setup/systemd | sudo bash`);

    const machine = await throwawayHost();
    expect(await runScript(script, machine)).toContain(`docker.service now uses http://${host}`);
    const first = await snapshot(machine.root);
    expectDockerHost(first, proxy, `http://${host}`);
    expect(await machine.commands()).toEqual([
      'update-ca-certificates ',
      'systemctl daemon-reload',
      'systemctl restart docker',
    ]);

    await runScript(script, machine);
    expect(await snapshot(machine.root)).toEqual(first);
    expect(await machine.commands()).toHaveLength(6);
  });

  it('GET /setup/systemd refuses a Host header that is not host[:port]', async () => {
    const proxy = await startProxy();
    const res = await request(`${proxy.url}/setup/systemd`, { headers: { host: "x'$(id)'" } });
    expect(res.statusCode).toBe(400);
    expect(await res.body.text()).not.toContain('$(id)');
  });

  it('pullthrough setup docker and podman: the same files from the command line', async () => {
    const proxy = await startProxy();
    const url = `http://127.0.0.1:${proxy.port}`;
    const docker = await throwawayHost();
    const dockerScript = await cliOutput(['setup', 'docker', '--proxy', url]);
    await runScript(dockerScript, docker);
    const first = await snapshot(docker.root);
    expectDockerHost(first, proxy, url);
    await runScript(dockerScript, docker);
    expect(await snapshot(docker.root)).toEqual(first);

    const podman = await throwawayHost();
    await runScript(
      await cliOutput(['setup', 'podman', '--proxy', url, '--direct', 'registry.internal']),
      podman,
    );
    const files = await snapshot(podman.root);
    expect(files['etc/containers/containers.conf.d/pullthrough-proxy.conf']).toBe(
      `644 [engine]\nenv = ["HTTP_PROXY=${url}", "HTTPS_PROXY=${url}", ` +
        '"NO_PROXY=localhost,127.0.0.0/8,::1,registry.internal"]\n',
    );
    expect(await podman.commands()).toEqual(['update-ca-certificates ']);
  });
});

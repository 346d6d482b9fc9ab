// The command line as an operator meets it: usage errors and bad config exit 2 with one clear
// message and no stack trace (a CA key others can read included); `serve` runs until SIGTERM and
// then exits 0 (a second signal: 1 at once); `ca rotate` rotates the CA of the configured ca.dir and
// says what to do next; --help and --version print to stdout and exit 0.
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadOrCreateCa } from '../../src/tls/ca.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCli } from '../helpers/cli.ts';

const run = runCli;

async function waitForStdout(proc: ReturnType<typeof run>, text: string): Promise<void> {
  while (!proc.stdout().includes(text)) await once(proc.child.stdout, 'data');
}

/** A TCP server on loopback port 0 that accepts connections and never answers. */
async function silentServer(): Promise<net.Server> {
  const server = net.createServer();
  // resume(): read and drop, so that the peer's close ends the socket and server.close() returns.
  server.on('connection', (socket) => socket.on('error', () => {}).resume());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

describe('cli', () => {
  it.each([[['bogus']], [['serve', '--nope']], [[]], [['ca']], [['ca', 'bogus']]])(
    'prints usage and exits 2 for %j',
    async (args) => {
      const { code, stderr } = await run(args).exited;
      expect(code).toBe(2);
      expect(stderr).toContain('usage: pullthrough serve');
      expect(stderr).not.toMatch(/\n\s+at /);
    },
  );

  it.each([
    [
      ['bogus'],
      /^pullthrough: unknown command 'bogus' \(usage: pullthrough serve \| ca show \| ca export \| ca rotate \| cache ls \| cache du \| cache purge \| cache pin \| cache unpin \| cache pins \| cache gc \| config check \| setup \| warm \| watch; see pullthrough --help\)\n$/,
    ],
    [
      ['serve', '--nope'],
      /^pullthrough: unknown option '--nope' \(usage: .+; see pullthrough serve --help\)\n$/,
    ],
    [
      ['ca', 'rotate', '--nope'],
      /^pullthrough: unknown option '--nope' \(usage: .+; see pullthrough ca rotate --help\)\n$/,
    ],
    [['ca', 'bogus'], /^pullthrough: unknown command 'bogus' \(usage: .+; see pullthrough ca --help\)\n$/],
    [[], /^pullthrough: missing command \(usage: .+\)\n$/],
    [['ca'], /^pullthrough: missing command after 'ca' \(usage: .+\)\n$/],
    [['serve', '--config'], /^pullthrough: option '-c, --config <file>' argument missing \(usage: .+\)\n$/],
    [['serve', 'extra'], /^pullthrough: too many arguments for 'serve'\..+\n$/],
  ])('bad usage %j: one line on stderr, nothing on stdout, exit 2', async (args, line) => {
    const { code, stdout, stderr } = await run(args).exited;
    expect(code).toBe(2);
    expect(stderr).toMatch(line);
    expect(stdout).toBe('');
  });

  it.each([[['--help']], [['-h']], [['help']]])(
    '%j prints the commands to stdout and exits 0',
    async (args) => {
      const { code, stdout, stderr } = await run(args).exited;
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^Usage: pullthrough /);
      expect(stdout).toMatch(/^ {2}serve \[options\] +run the proxy/m);
      expect(stdout).toMatch(/^ {2}ca +manage the CA/m);
      expect(stdout).toContain('Exit codes: 0 ok, 1 could not run, 2 bad usage or bad configuration.');
    },
  );

  it.each([[['serve', '--help']], [['serve', '-h']], [['help', 'serve']]])(
    '%j prints the serve options to stdout and exits 0',
    async (args) => {
      const { code, stdout, stderr } = await run(args).exited;
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^Usage: pullthrough serve \[options\]\n/);
      expect(stdout).toMatch(/^ {2}-c, --config <file> +read settings from this YAML file/m);
      expect(stdout).toMatch(/^ {2}-h, --help /m);
      expect(stdout).not.toContain('"msg":"listening"');
    },
  );

  it('ca rotate --help prints its options to stdout, exits 0 and rotates nothing', async () => {
    const dir = await tempDir();
    const { code, stdout, stderr } = await run(['ca', 'rotate', '--help'], { PULLTHROUGH_CA_DIR: dir })
      .exited;
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^Usage: pullthrough ca rotate \[options\]\n/);
    expect(stdout).toContain('replace the CA in ca.dir with a new one');
    expect(stdout).toMatch(/^ {2}-c, --config <file> /m);
    expect(await readdir(dir)).toEqual([]);
  });

  it('--version prints the version of package.json and exits 0', async () => {
    const pkg = JSON.parse(
      await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8'),
    ) as { version: string };
    const { code, stdout, stderr } = await run(['--version']).exited;
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toBe(`${pkg.version}\n`);
  });

  it('lists every configuration problem by path and exits 2, without a stack trace', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'listen: nope\nbogus: 1\nupstream: {verifyTls: maybe}\n');
    const { code, stderr } = await run(['serve', '--config', file], { VERIFY_SSL: 'sometimes' }).exited;
    expect(code).toBe(2);
    expect(stderr).toContain('listen: "nope" is not host:port');
    expect(stderr).toContain('unknown key "bogus"');
    expect(stderr).toContain('VERIFY_SSL: "sometimes" is not true or false');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('serves until SIGTERM, then exits 0', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\n');
    const proc = run(['serve', '--config', file]);
    while (!proc.stdout().includes('"msg":"listening"')) await once(proc.child.stdout, 'data');
    proc.child.kill('SIGTERM');
    const { code, stdout } = await proc.exited;
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"stopped"');
  });

  it('serve warns once at start about each rpardini variable that means nothing here', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\n');
    const proc = run(['serve', '--config', file], {
      SEND_TIMEOUT: '60s',
      DEBUG: 'true',
      KEEPALIVE_TIMEOUT: '300s', // mapped: no warning
    });
    await waitForStdout(proc, '"msg":"listening"');
    proc.child.kill('SIGTERM');
    const { code, stdout } = await proc.exited;
    expect(code).toBe(0);
    const warnings = stdout
      .split('\n')
      .filter((line) => line.includes(' is ignored: '))
      .map((line) => (JSON.parse(line) as { env: string; level: number }).env);
    expect(warnings.sort()).toEqual(['DEBUG', 'SEND_TIMEOUT']);
  });

  it('serve with LOG_FORMAT=pretty logs readable lines', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\n');
    const proc = run(['serve', '--config', file], { LOG_FORMAT: 'pretty' });
    await waitForStdout(proc, 'INFO: listening');
    proc.child.kill('SIGTERM');
    const { code, stdout } = await proc.exited;
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\[[\d:.]+\] INFO: listening\n {4}address: "127\.0\.0\.1"/m);
    expect(stdout).toContain('INFO: stopped');
    expect(stdout).not.toContain('"msg"');
  });

  it('serve -c FILE: a second signal while shutting down exits 1 at once', async () => {
    const dir = await tempDir();
    const upstream = await silentServer();
    const { port } = upstream.address() as AddressInfo;
    const file = path.join(dir, 'config.yaml');
    await writeFile(
      file,
      'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\nshutdownTimeout: 5m\n' +
        `proxy: {denyNetworks: [], httpPorts: [${port}]}\n`,
    );
    const proc = run(['serve', '-c', file]);
    await waitForStdout(proc, '"msg":"listening"');
    const proxyPort = Number(/"port":(\d+)[^\n]*"msg":"listening"/.exec(proc.stdout())?.[1]);
    // A forwarded request the silent upstream never answers: the graceful stop waits for it.
    const client = net.connect(proxyPort, '127.0.0.1');
    client.on('error', () => {});
    onTestFinished(() => void client.destroy());
    client.write(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await once(upstream, 'connection');
    proc.child.kill('SIGTERM');
    await waitForStdout(proc, '"msg":"shutting down"');
    proc.child.kill('SIGINT');
    const { code, stdout, stderr } = await proc.exited;
    expect(code).toBe(1);
    expect(stdout).toContain('"msg":"second signal: exiting now"');
    expect(stdout).not.toContain('"msg":"stopped"');
    expect(stderr).toBe('');
  });

  it('serve on an address in use: one line naming it, exit 1', async () => {
    const dir = await tempDir();
    const taken = await silentServer();
    const { port } = taken.address() as AddressInfo;
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, `listen: 127.0.0.1:${port}\nca: {dir: ./ca}\ncache: {dir: ./cache}\n`);
    const { code, stderr } = await run(['serve', '--config', file]).exited;
    expect(code).toBe(1);
    expect(stderr).toBe(`pullthrough: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
  });

  it.skipIf(process.platform === 'win32')(
    'refuses to serve with a CA key others can read: one line saying how to fix it, exit 2',
    async () => {
      const dir = await tempDir();
      await loadOrCreateCa({ dir: path.join(dir, 'ca') });
      const keyPath = path.join(dir, 'ca', 'ca.key');
      await chmod(keyPath, 0o644);
      const file = path.join(dir, 'config.yaml');
      await writeFile(file, 'listen: 127.0.0.1:0\nca: {dir: ./ca}\ncache: {dir: ./cache}\n');
      const { code, stdout, stderr } = await run(['serve', '--config', file]).exited;
      expect(code).toBe(2);
      const whom = process.getuid?.() === 0 ? 'others' : 'group/others'; // a root-owned key may be group-read
      expect(stderr).toBe(
        `pullthrough: CA key ${keyPath} is readable by ${whom} (mode 0644): run chmod 600 ${keyPath}\n`,
      );
      expect(stdout).not.toContain('"msg":"listening"');
    },
  );

  it('ca rotate: rotates the CA in ca.dir, prints the fingerprints and the next steps, exits 0', async () => {
    const dir = await tempDir();
    const caDir = path.join(dir, 'ca');
    const old = await loadOrCreateCa({ dir: caDir });
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'ca: {dir: ./ca}\n');
    const { code, stdout, stderr } = await run(['ca', 'rotate', '--config', file]).exited;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect((await readdir(caDir)).sort()).toEqual([
      'ca.crt',
      'ca.key',
      'cross.crt',
      'previous.crt',
      'previous.key',
    ]);
    expect((await stat(path.join(caDir, 'ca.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(caDir, 'previous.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(caDir, 'previous.crt'), 'utf8')).toBe(old.certPem);
    const rotated = await loadOrCreateCa({ dir: caDir });
    expect(rotated.overlap.state).toBe('active');
    expect(stdout).toContain(`rotated the CA in ${caDir}`);
    expect(stdout).toContain(`new CA, sha256 ${rotated.fingerprintSha256}`);
    expect(stdout).toContain(`old CA, sha256 ${old.fingerprintSha256}`);
    expect(stdout).toContain('restart pullthrough');
    expect(stdout).toContain('delete previous.crt, previous.key and cross.crt');

    // Rotating again during the overlap would drop the CA clients trust today: refused.
    const again = await run(['ca', 'rotate', '--config', file]).exited;
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(
      /^pullthrough: a rotation is in progress \(.+previous\.crt is valid until .+\n$/,
    );
  });

  it('ca rotate without a CA: exit 2, one line, nothing created', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, 'ca: {dir: ./ca}\n');
    const { code, stdout, stderr } = await run(['ca', 'rotate', '--config', file]).exited;
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `pullthrough: no CA in ${path.join(dir, 'ca')} (ca.crt and ca.key are missing): check ca.dir, or start pullthrough serve once to create one\n`,
    );
    expect(await readdir(dir)).toEqual(['config.yaml']);
  });

  describe('config check', () => {
    it('prints the effective config as YAML with secrets masked, and the rpardini variables', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'config.yaml');
      await writeFile(
        file,
        'ca: {dir: ./ca, passphrase: hunter2}\nregistries: [quay.io]\nlimits: {idleTimeout: 90s}\n' +
          'upstream: {credentials: [{host: quay.io, username: bot, password: sesame}]}\n' +
          'cluster: {redis: "redis://:opensesame@10.0.0.5:6379", secret: thirty-two-characters-of-secret}\n',
      );
      const { code, stdout, stderr } = await run(['config', 'check', file], {
        KEEPALIVE_TIMEOUT: '', // set but empty: not set
        CLIENT_HEADER_TIMEOUT: '45',
        SEND_TIMEOUT: '60s',
      }).exited;
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).not.toMatch(/hunter2|sesame|thirty-two/);
      const effective = parseYaml(stdout) as Record<string, Record<string, unknown>>;
      expect(effective['ca']).toEqual({
        dir: path.join(dir, 'ca'),
        passphrase: '[masked]',
        passphraseFile: null,
      });
      expect(effective['limits']).toMatchObject({
        idleTimeout: '90s',
        headersTimeout: '45s',
        maxHeaderSize: '16KiB',
      });
      expect(effective['upstream']?.['credentials']).toEqual([
        { host: 'quay.io', username: 'bot', password: '[masked]' },
      ]);
      expect(effective['cluster']).toMatchObject({
        redis: 'redis://:[masked]@10.0.0.5:6379',
        secret: '[masked]',
      });
      expect(effective['listen']).toBe('0.0.0.0:3128');
      expect(stdout).toContain('#   CLIENT_HEADER_TIMEOUT: sets limits.headersTimeout\n');
      expect(stdout).toMatch(/^# {3}SEND_TIMEOUT: ignored, no equivalent setting/m);
      expect(stdout).not.toContain('KEEPALIVE_TIMEOUT');
    });

    it('the printed config, read back, is the same config', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'config.yaml');
      await writeFile(
        file,
        'listen: "[::1]:3129"\nregistries: [quay.io, {host: "ghcr.io", tagTtl: 90s, policy: share}]\n' +
          'cache: {maxSize: 1500MB, maxStale: 36h}\nlimits: {headersTimeout: 250ms}\n',
      );
      const first = await run(['config', 'check', file]).exited;
      expect(first.code).toBe(0);
      const again = path.join(dir, 'again.yaml');
      await writeFile(again, first.stdout);
      const second = await run(['config', 'check', again]).exited;
      expect(second.code).toBe(0);
      expect(second.stdout.split('\n').slice(1)).toEqual(first.stdout.split('\n').slice(1));
    });

    it('exits 2 with the same messages as serve', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'bad.yaml');
      await writeFile(file, 'listen: nope\nlimits: {idleTimout: 5m}\n');
      const check = await run(['config', 'check', file]).exited;
      const serve = await run(['serve', '--config', file]).exited;
      expect(check.code).toBe(2);
      expect(check.stdout).toBe('');
      expect(check.stderr).toBe(serve.stderr);
      expect(check.stderr).toContain(
        'line 2: limits: unknown key "idleTimout" (did you mean "idleTimeout"?)',
      );
    });
  });

  describe('ca show and ca export', () => {
    it('show: subject, fingerprint, validity and rotation state, without creating anything', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'config.yaml');
      await writeFile(file, 'ca: {dir: ./ca}\n');
      const missing = await run(['ca', 'show', '-c', file]).exited;
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^pullthrough: no CA in /);
      expect(await readdir(dir)).toEqual(['config.yaml']);

      const ca = await loadOrCreateCa({ dir: path.join(dir, 'ca') });
      const { code, stdout } = await run(['ca', 'show', '-c', file]).exited;
      expect(code).toBe(0);
      expect(stdout).toContain(`CA in ${path.join(dir, 'ca')}\n`);
      expect(stdout).toMatch(/^ {2}subject {6}O=pullthrough, CN=pullthrough CA /m);
      expect(stdout).toContain(`  sha256       ${ca.fingerprintSha256}\n`);
      expect(stdout).toContain(`to ${ca.notAfter.toISOString()} (`);
      expect(stdout).toContain('  rotation     none\n');

      await run(['ca', 'rotate', '-c', file]).exited;
      const rotated = await run(['ca', 'show', '-c', file]).exited;
      expect(rotated.stdout).toContain(
        `  rotation     in progress: signing with the previous CA (sha256 ${ca.fingerprintSha256})`,
      );
    });

    it('export: the certificate the proxy serves, as PEM or DER, to stdout or a file', async () => {
      const dir = await tempDir();
      const file = path.join(dir, 'config.yaml');
      await writeFile(file, 'ca: {dir: ./ca}\n');
      const ca = await loadOrCreateCa({ dir: path.join(dir, 'ca') });
      const pem = await run(['ca', 'export', '-c', file]).exited;
      expect(pem.code).toBe(0);
      expect(pem.stdout).toBe(ca.certPem);

      const out = path.join(dir, 'ca.der');
      const der = await run(['ca', 'export', '-c', file, '--format', 'der', '--out', out]).exited;
      expect(der.code).toBe(0);
      expect(der.stdout).toBe('');
      expect((await readFile(out)).equals(new X509Certificate(ca.certPem).raw)).toBe(true);

      const bad = await run(['ca', 'export', '-c', file, '--format', 'p12']).exited;
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/argument 'p12' is invalid\. Allowed choices are pem, der\./);
    });
  });

  it('setup: a script for each client; a bad client, proxy URL or NO_PROXY entry is bad usage', async () => {
    const { code, stdout } = await run(['setup', 'kubernetes', '--proxy', 'http://10.0.0.5:3128']).exited;
    expect(code).toBe(0);
    expect(stdout).toContain('Environment="HTTPS_PROXY=http://10.0.0.5:3128"');
    expect(stdout).toContain('.svc,.cluster.local');
    for (const args of [
      ['setup', 'rkt'],
      ['setup', 'docker', '--proxy', 'https://p:3128'],
      ['setup', 'docker', '--proxy', 'http://p:3128/$(id)'],
      ['setup', 'docker', '--direct', 'a b'],
    ]) {
      const bad = await run(args).exited;
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stdout).toBe('');
      expect(bad.stderr).toMatch(/^pullthrough: .+\n$/);
    }
  });
});

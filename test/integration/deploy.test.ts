// The deployments under deploy/ and the Dockerfile, read by the tools that consume them (kubectl
// kustomize, docker-compose config, systemd-analyze) and held to IMAGE_CONTRACT, which the e2e
// container test holds the built image to. A tool that cannot be installed here skips its check
// and says so in the test's name. node-setup.sh runs for real against a scratch node root.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { delimiter, join, resolve } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, test } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { parseSize } from '../../src/config/units.ts';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import { IMAGE_CONTRACT as C } from '../helpers/image-contract.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const DEPLOY = join(ROOT, 'deploy');

function installed(tool: string): boolean {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return dir !== '';
    } catch {
      return false;
    }
  });
}

/** The test's name, with the reason when `tool` is missing (the test is then skipped). */
function needing(tool: string, name: string, why: string): [boolean, string] {
  const missing = !installed(tool);
  return [missing, missing ? `${name} (skipped: ${tool} is not installed; ${why})` : name];
}

function exec(
  cmd: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: options.input, env: options.env ?? process.env });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function execOk(cmd: string, args: readonly string[], options?: { input?: string; env?: NodeJS.ProcessEnv }) {
  const r = exec(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.code)}):\n${r.stderr}`);
  return r.stdout;
}

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

function kustomize(dir: string): K8sObject[] {
  const out = execOk('kubectl', ['kustomize', join(DEPLOY, dir)]);
  return parseAllDocuments(out).map((doc) => doc.toJS() as K8sObject);
}

/** Each object through its kind's OpenAPI schema (kubernetes-models): types, enums, required keys. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function validate(objects: readonly K8sObject[]): void {
  for (const object of objects) {
    const Model = MODELS[`${object.apiVersion}/${object.kind}`];
    if (Model === undefined) throw new Error(`no schema checked for ${object.apiVersion} ${object.kind}`);
    new Model(object as never).validate();
  }
}

function one<T>(objects: readonly K8sObject[], kind: string): T {
  const found = objects.filter((object) => object.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as T;
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value: string }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  terminationGracePeriodSeconds?: number;
  volumes: {
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string; optional?: boolean };
  }[];
}
type Workload = K8sObject & {
  spec: { template: { spec: PodSpec }; volumeClaimTemplates?: { metadata: { name: string } }[] };
};

/** Kubernetes quantities used here: Mi and Gi. */
function mebibytes(quantity: string | undefined): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity ?? '');
  if (!match) throw new Error(`unexpected quantity ${String(quantity)}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

const [noKubectl, kubectlName] = needing('kubectl', 'kubectl', 'it is not in Debian 12');

describe('deploy/kubernetes', () => {
  test.skipIf(noKubectl)(
    `${kubectlName} kustomize renders the base and the node-setup component; each object passes its schema`,
    () => {
      const base = kustomize('kubernetes');
      expect(base.map((object) => object.kind).sort()).toEqual([
        'ConfigMap',
        'Namespace',
        'PodDisruptionBudget',
        'Service',
        'StatefulSet',
      ]);
      const nodeSetup = kustomize('kubernetes/node-setup');
      expect(nodeSetup.map((object) => object.kind).sort()).toEqual(['ConfigMap', 'DaemonSet']);
      validate([...base, ...nodeSetup]);
      for (const object of [...base, ...nodeSetup].filter((o) => o.kind !== 'Namespace'))
        expect(object.metadata.namespace, object.kind).toBe('pullthrough');
      // Without a cluster `kubectl apply --dry-run=client` cannot map kinds (it asks the API
      // server); `label --local` decodes every object with no server.
      const rendered = execOk('kubectl', ['kustomize', join(DEPLOY, 'kubernetes')]);
      const names = execOk('kubectl', ['label', '--local', '-f', '-', '-o', 'name', 'checked=yes'], {
        input: rendered,
      });
      expect(names.trim().split('\n')).toHaveLength(base.length);
      // The schema check has teeth: a wrong type fails it.
      const broken = structuredClone(one<Workload>(base, 'StatefulSet'));
      (broken.spec.template.spec.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = 'x';
      expect(() => validate([broken])).toThrow(/containerPort must be integer/);
    },
  );

  test.skipIf(noKubectl)(`${kubectlName}: the StatefulSet runs the image as it is built`, () => {
    const objects = kustomize('kubernetes');
    const sts = one<Workload>(objects, 'StatefulSet');
    const pod = sts.spec.template.spec;
    const [proxy] = pod.containers;
    if (proxy === undefined) throw new Error('no container');
    expect(proxy.image).toBe('pullthrough:dev');
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: C.uid,
      runAsGroup: C.gid,
      fsGroup: C.gid,
    });
    expect(proxy.ports).toEqual([{ name: 'proxy', containerPort: C.port }]);
    expect(proxy.args).toEqual(['serve', '--config', C.configFile]);
    expect(proxy.livenessProbe?.httpGet).toEqual({ path: C.liveness, port: 'proxy' });
    expect(proxy.readinessProbe?.httpGet).toEqual({ path: C.readiness, port: 'proxy' });
    const mounts = Object.fromEntries((proxy.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
    expect(mounts).toEqual({ [C.caDir]: 'ca', [C.cacheDir]: 'cache', '/etc/pullthrough': 'config' });
    expect(sts.spec.volumeClaimTemplates?.map((claim) => claim.metadata.name).sort()).toEqual([
      'ca',
      'cache',
    ]);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(C.drainSeconds);
    // README Performance: ~100 MiB idle, ~270 MiB peak.
    expect(mebibytes(proxy.resources?.requests?.['memory'])).toBeGreaterThanOrEqual(100);
    expect(mebibytes(proxy.resources?.limits?.['memory'])).toBeGreaterThanOrEqual(270 * 1.25);
    // The config comes from the generated ConfigMap, and the CA Secret is optional.
    const config = one<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap');
    expect(pod.volumes.find((v) => v.name === 'config')?.configMap?.name).toBe(config.metadata.name);
    expect(pod.volumes.find((v) => v.name === 'ca-secret')?.secret).toMatchObject({
      secretName: 'pullthrough-ca',
      optional: true,
    });
    const service = one<K8sObject & { spec: { ports: { port: number; targetPort: string }[] } }>(
      objects,
      'Service',
    );
    expect(service.spec.ports).toEqual([{ name: 'proxy', port: C.port, targetPort: 'proxy' }]);
  });

  test.skipIf(noKubectl)(
    `${kubectlName}: the ConfigMap's config.yaml is a valid config on the volumes`,
    () => {
      const objects = kustomize('kubernetes');
      const text = one<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap').data[
        'config.yaml'
      ];
      const sts = one<Workload>(objects, 'StatefulSet');
      const env = Object.fromEntries(
        (sts.spec.template.spec.containers[0]?.env ?? []).map((entry) => [entry.name, entry.value]),
      );
      const config = parseConfig(parse(text ?? '') as unknown, env, 'configmap', '/etc/pullthrough');
      expect(config.listen.port).toBe(C.port);
      expect(config.ca.dir).toBe(C.caDir);
      expect(config.cache.dir).toBe(C.cacheDir);
      expect(config.shutdownTimeout).toBeLessThan(
        (sts.spec.template.spec.terminationGracePeriodSeconds ?? 0) * 1000,
      );
      // The cache's budget fits its claim.
      expect(config.cache.maxSize).toBeLessThan(40 * 2 ** 30);
      expect(parseSize('32GiB')).toBe(config.cache.maxSize);
    },
  );

  test.skipIf(noKubectl)(
    `${kubectlName}: node-setup runs privileged on every node with the cluster's ranges`,
    () => {
      const objects = kustomize('kubernetes/node-setup');
      const ds = one<Workload & { spec: { template: { spec: { hostPID?: boolean } } } }>(
        objects,
        'DaemonSet',
      );
      const config = one<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap');
      // kubeadm's defaults, which the README says to edit.
      expect(config.data).toMatchObject({
        CLUSTER_CIDR: '10.244.0.0/16',
        SERVICE_CIDR: '10.96.0.0/12',
        RUNTIME: 'containerd',
      });
      expect(config.data['node-setup.sh']).toBe(readFileSync(NODE_SETUP, 'utf8'));
      expect(ds.spec.template.spec.hostPID).toBe(true);
      const setup = ds.spec.template.spec.initContainers?.[0];
      expect(setup?.volumeMounts?.map((m) => m.mountPath).sort()).toEqual(['/host', '/node-setup']);
    },
  );
});

const NODE_SETUP = join(DEPLOY, 'kubernetes/node-setup/node-setup.sh');

describe('deploy/kubernetes/node-setup/node-setup.sh', () => {
  test('applies `pullthrough setup kubernetes` on the node once, and again only when the CA changes', async () => {
    let ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/ca.crt' ? 200 : 404, { 'content-type': 'application/x-pem-file' });
      res.end(req.url === '/ca.crt' ? ca : 'not found\n');
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as { port: number }).port;
      const root = await tempDir();
      const env = {
        PATH: process.env['PATH'],
        HOST_ROOT: root,
        PROXY_SERVICE: '127.0.0.1',
        PROXY_PORT: String(port),
        // The CLI from this checkout; on the node side, only say what would run.
        PULLTHROUGH: `node ${join(ROOT, 'src', 'main.ts')}`,
        HOST_EXEC: 'echo ran on the node:',
        CLUSTER_CIDR: '10.42.0.0/16',
        SERVICE_CIDR: '10.43.0.0/16',
        DIRECT: 'registry.example.com',
      };
      const first = await runScript(NODE_SETUP, env);
      expect(first).toContain('ran on the node: bash /var/lib/pullthrough-node-setup/setup.sh');
      const script = readFileSync(join(root, 'var/lib/pullthrough-node-setup/setup.sh'), 'utf8');
      expect(script).toContain(`PROXY='http://127.0.0.1:${port}'`);
      expect(script).toContain('put /etc/systemd/system/containerd.service.d/http-proxy.conf');
      expect(script).toMatch(
        /^Environment="NO_PROXY=.*registry\.example\.com,10\.42\.0\.0\/16,10\.43\.0\.0\/16,\.svc,\.cluster\.local"$/m,
      );
      expect(script).toContain('systemctl restart containerd');
      const second = await runScript(NODE_SETUP, env);
      expect(second).not.toContain('ran on the node');
      expect(second).toContain('already set up');
      // A new CA (rotated, or a new claim): the node must trust it, so the script runs again.
      ca = ca.replace('MIIB', 'MIIC');
      expect(await runScript(NODE_SETUP, env)).toContain('ran on the node');
    } finally {
      server.close();
    }
  });
});

/** The script is run asynchronously: it fetches from this process's server. */
async function runScript(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn('sh', [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`node-setup.sh exited ${String(code)}:\n${out}`);
  return out;
}

const [noCompose, composeName] = needing(
  'docker-compose',
  'docker-compose config',
  'npm test installs it (ensure-deps)',
);

describe('deploy/compose.yaml', () => {
  test.skipIf(noCompose)(
    `${composeName} accepts it: named volumes, the port, the health check, the stop grace`,
    () => {
      const out = execOk('docker-compose', ['-f', join(DEPLOY, 'compose.yaml'), 'config'], {
        env: { ...process.env, PULLTHROUGH_HOST_PORT: '' },
      });
      const compose = parse(out) as {
        services: Record<string, Record<string, unknown>>;
        volumes: Record<string, unknown>;
      };
      expect(Object.keys(compose.services)).toEqual(['pullthrough']); // the client is an example only
      const service = compose.services['pullthrough']!;
      expect(service['image']).toBe('pullthrough:dev');
      expect(service['ports']).toEqual([{ published: C.port, target: C.port }]);
      expect(service['volumes']).toEqual([
        `pullthrough-ca:${C.caDir}:rw`,
        `pullthrough-cache:${C.cacheDir}:rw`,
      ]);
      expect(Object.keys(compose.volumes).sort()).toEqual(['pullthrough-ca', 'pullthrough-cache']);
      expect((service['healthcheck'] as { test: string[] }).test).toEqual([
        'CMD',
        'node',
        '/app/healthcheck.js',
      ]);
      expect(Number(/^(\d+)s$/.exec(String(service['stop_grace_period']))?.[1])).toBeGreaterThan(
        C.drainSeconds,
      );
      // The host port follows PULLTHROUGH_HOST_PORT.
      const moved = execOk('docker-compose', ['-f', join(DEPLOY, 'compose.yaml'), 'config'], {
        env: { ...process.env, PULLTHROUGH_HOST_PORT: '13128' },
      });
      expect((parse(moved) as typeof compose).services['pullthrough']!['ports']).toEqual([
        { published: 13128, target: C.port },
      ]);
    },
  );
});

const UNIT = join(DEPLOY, 'systemd/pullthrough.service');
const [noSystemd, systemdName] = needing('systemd-analyze', 'systemd-analyze', 'it comes with systemd');

/** The unit as installed: its /opt/pullthrough paths moved to this checkout, where Node is. */
async function installedUnit(): Promise<string> {
  const dir = await tempDir();
  const unit = join(dir, 'pullthrough.service');
  writeFileSync(unit, readFileSync(UNIT, 'utf8').replaceAll('/opt/pullthrough', ROOT));
  return unit;
}

describe('deploy/systemd/pullthrough.service', () => {
  test.skipIf(noSystemd)(`${systemdName} verify finds nothing to say, and security rates it OK`, async () => {
    const unit = await installedUnit();
    const verify = exec('systemd-analyze', ['verify', unit]);
    expect(`${verify.stdout}${verify.stderr}`).toBe('');
    expect(verify.code).toBe(0);
    // Exposure 0 (locked down) to 10 (unprotected), --threshold in tenths: fail above 3.0.
    const security = exec('systemd-analyze', ['security', '--offline=true', '--threshold=30', unit]);
    expect(security.stdout).toMatch(/Overall exposure level for pullthrough\.service: [0-2]\.\d OK/);
    expect(security.code).toBe(0);
  });

  test('runs Node with NODE_FLAGS, writes only its CA and cache, drains before the kill', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const values = (key: string): string[] =>
      [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((match) => match[1] ?? '');
    expect(values('ExecStart')).toEqual([
      `/opt/pullthrough/node_modules/node/bin/node ${NODE_FLAGS.join(' ')} /opt/pullthrough/dist/main.js serve --config /etc/pullthrough/config.yaml`,
    ]);
    const env: Record<string, string> = Object.fromEntries(
      values('Environment').map((entry) => entry.split('=', 2) as [string, string]),
    );
    const writable = values('ReadWritePaths').flatMap((line) => line.split(' '));
    expect(writable).toContain(env['PULLTHROUGH_CA_DIR']?.replace(/\/ca$/, ''));
    expect(writable).toContain(env['PULLTHROUGH_CACHE_DIR']);
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['Restart', 'on-failure'],
      ['User', 'pullthrough'],
      ['KillSignal', 'SIGTERM'],
    ])
      expect(values(key!), key).toEqual([value]);
    expect(Number(values('LimitNOFILE')[0])).toBeGreaterThanOrEqual(65536);
    expect(Number(/^(\d+)s$/.exec(values('TimeoutStopSec')[0] ?? '')?.[1])).toBeGreaterThan(C.drainSeconds);
  });
});

describe('Dockerfile', () => {
  test('USER, EXPOSE, VOLUME, CMD and HEALTHCHECK are what the deployments expect', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const lines = (instruction: string): string[] =>
      [...dockerfile.matchAll(new RegExp(`^${instruction} (.*)$`, 'gm'))].map((match) => match[1] ?? '');
    expect(lines('USER')).toEqual([`${C.uid}:${C.gid}`]);
    expect(lines('EXPOSE')).toEqual([String(C.port)]);
    expect(lines('VOLUME').map((line) => JSON.parse(line) as string[])).toEqual([[C.caDir, C.cacheDir]]);
    expect(lines('CMD').map((line) => JSON.parse(line) as string[])).toEqual([
      ['serve', '--config', C.configFile],
    ]);
    expect(lines('HEALTHCHECK')[0]).toMatch(/ CMD \["node", "\/app\/healthcheck\.js"\]$/);
    expect(lines('ARG')[0]).toMatch(
      /^BASE_IMAGE=docker\.io\/library\/node:24-bookworm-slim@sha256:[0-9a-f]{64}$/,
    );
  });
});

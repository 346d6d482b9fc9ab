// `pullthrough setup <client>`: prints the shell script (setup/script.ts) that points a host's
// docker, containerd, podman, CRI-O, buildkit or Kubernetes node at the proxy and trusts its CA.
import os from 'node:os';
import { Argument, Command, Option } from 'commander';
import {
  CLIENTS,
  DEFAULT_CLUSTER_CIDR,
  DEFAULT_SERVICE_CIDR,
  planFor,
  type Client,
} from '../setup/clients.ts';
import { mirrorSetup, parseMirrorUrl, type MirrorClient } from '../setup/mirror.ts';
import { parseProxyUrl, setupScript } from '../setup/script.ts';
import { loadConfig } from '../config/load.ts';
import { UsageError } from './errors.ts';
import { configOption, type ConfigOptions } from './options.ts';

interface SetupOptions extends ConfigOptions {
  readonly proxy: string;
  readonly mirror?: string;
  readonly direct?: string;
  readonly runtime: 'containerd' | 'crio';
  readonly clusterCidr: string;
  readonly serviceCidr: string;
}

export function setupCommand(): Command {
  return (
    new Command('setup')
      .description(
        "print a script that points this client at the proxy and trusts its CA (run it as root: '| sudo bash')",
      )
      .addArgument(new Argument('<client>', 'the client to set up').choices(CLIENTS))
      .addOption(
        new Option('--proxy <url>', 'the proxy as the host reaches it').default(
          `http://${os.hostname()}:3128`,
        ),
      )
      // Not --no-proxy: commander reads --no-X as the negation of --X.
      .addOption(
        new Option(
          '--direct <list>',
          'more destinations not to reach through the proxy (NO_PROXY), comma-separated',
        ),
      )
      .addOption(
        new Option('--runtime <name>', 'kubernetes: the container runtime of the nodes')
          .choices(['containerd', 'crio'])
          .default('containerd'),
      )
      .addOption(
        new Option('--cluster-cidr <cidr>', 'kubernetes: the pod range').default(DEFAULT_CLUSTER_CIDR),
      )
      .addOption(
        new Option('--service-cidr <cidr>', 'kubernetes: the service range').default(DEFAULT_SERVICE_CIDR),
      )
      .addOption(
        new Option(
          '--mirror <url>',
          "mirror mode: print the client's mirror configuration for the configured registries instead",
        ),
      )
      .addOption(configOption())
      .action((client: Client, options: SetupOptions) =>
        options.mirror === undefined ? setup(client, options) : setupMirror(client, options.mirror, options),
      )
  );
}

function setup(client: Client, options: SetupOptions): void {
  const proxy = parseProxyUrl(options.proxy);
  if (proxy === undefined) {
    throw new UsageError(`--proxy ${JSON.stringify(options.proxy)} is not http://[user:pass@]host[:port]`);
  }
  const direct = (options.direct ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  // Written into a script and a unit file: only what host names and CIDRs are made of.
  const given: Array<[string, string]> = [
    ...direct.map((entry): [string, string] => ['--direct', entry]),
    ['--cluster-cidr', options.clusterCidr],
    ['--service-cidr', options.serviceCidr],
  ];
  for (const [flag, value] of given) {
    if (!/^[A-Za-z0-9.:/*_-]+$/.test(value)) {
      throw new UsageError(`${flag}: ${JSON.stringify(value)} is not a host name, address or CIDR`);
    }
  }
  const plan = planFor(client, {
    noProxy: direct,
    runtime: options.runtime,
    clusterCidr: options.clusterCidr,
    serviceCidr: options.serviceCidr,
  });
  process.stdout.write(setupScript(plan, proxy, `pullthrough setup ${client} --proxy ${proxy} | sudo bash`));
}

/** `--mirror URL`: the mirror entries for every registry of the configuration (`-c`). */
async function setupMirror(client: Client, url: string, options: SetupOptions): Promise<void> {
  const mirror = parseMirrorUrl(url);
  if (mirror === undefined)
    throw new UsageError(`--mirror ${JSON.stringify(url)} is not http(s)://host[:port]`);
  const target: MirrorClient | undefined =
    client === 'kubernetes' ? options.runtime : client === 'buildkit' ? undefined : client;
  if (target === undefined) {
    throw new UsageError(
      '--mirror: buildkit is not supported; use containerd, crio, podman, docker or kubernetes',
    );
  }
  const config = await loadConfig({ file: options.config });
  const registries = config.registries.map((registry) => registry.host);
  process.stdout.write(mirrorSetup(target, mirror, registries, config.mirror.default));
}

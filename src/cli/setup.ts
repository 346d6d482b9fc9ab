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
import { parseProxyUrl, setupScript } from '../setup/script.ts';
import { UsageError } from './errors.ts';

interface SetupOptions {
  readonly proxy: string;
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
      .action((client: Client, options: SetupOptions) => setup(client, options))
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

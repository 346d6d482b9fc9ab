// What each container client needs to go through pullthrough: where its proxy setting lives (a
// systemd drop-in for the daemons, containers.conf for podman), which NO_PROXY suits it, and what
// to restart. script.ts turns one of these into a shell script. Pure: no I/O.

export const CLIENTS = ['docker', 'containerd', 'podman', 'crio', 'buildkit', 'kubernetes'] as const;
export type Client = (typeof CLIENTS)[number];

/** Destinations no client sends through a proxy: this host. */
export const LOCAL_NO_PROXY: readonly string[] = ['localhost', '127.0.0.0/8', '::1'];

/** kubeadm's service range and flannel's (kubeadm's usual) pod range; k3s: 10.43.0.0/16, 10.42.0.0/16. */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';

export interface ClientOptions {
  /** Entries added to NO_PROXY. */
  readonly noProxy?: readonly string[];
  /** kubernetes: the node's container runtime. */
  readonly runtime?: 'containerd' | 'crio';
  readonly clusterCidr?: string;
  readonly serviceCidr?: string;
}

/** Where a client's proxy setting goes and how it takes effect. */
export interface ClientPlan {
  readonly client: Client;
  /** A systemd unit given HTTP(S)_PROXY by a drop-in, or podman's containers.conf. */
  readonly target: { readonly unit: string } | { readonly containersConf: true };
  readonly noProxy: readonly string[];
  /** Said in the script's comments: what else to know. */
  readonly notes: readonly string[];
}

export function planFor(client: Client, options: ClientOptions = {}): ClientPlan {
  const extra = options.noProxy ?? [];
  const base = [...LOCAL_NO_PROXY, ...extra];
  switch (client) {
    case 'docker':
      return {
        client,
        target: { unit: 'docker' },
        noProxy: base,
        notes: [
          'dockerd reads the trust store once, at start: the restart below is what makes it trust the CA.',
        ],
      };
    case 'containerd':
      return {
        client,
        target: { unit: 'containerd' },
        noProxy: base,
        notes: [
          'ctr in containerd 1.x pulls from the client side: give ctr itself HTTPS_PROXY to go through the proxy.',
        ],
      };
    case 'crio':
      return { client, target: { unit: 'crio' }, noProxy: base, notes: [] };
    case 'buildkit':
      return {
        client,
        target: { unit: 'buildkit' },
        noProxy: base,
        notes: [
          'For docker buildx with the docker-container driver instead, create the builder with',
          '--driver-opt env.http_proxy=PROXY --driver-opt env.https_proxy=PROXY.',
        ],
      };
    case 'podman':
      return {
        client,
        target: { containersConf: true },
        noProxy: base,
        notes: ['podman reads containers.conf at every command: nothing to restart.'],
      };
    case 'kubernetes':
      return {
        client,
        target: { unit: options.runtime ?? 'containerd' },
        noProxy: [
          ...base,
          options.clusterCidr ?? DEFAULT_CLUSTER_CIDR,
          options.serviceCidr ?? DEFAULT_SERVICE_CIDR,
          '.svc',
          '.cluster.local',
        ],
        notes: [
          'Run it on every node. The kubelet does not pull: the container runtime does.',
          'NO_PROXY keeps in-cluster registries (pod and service ranges, .svc names) off the proxy;',
          'check the ranges against your cluster (k3s: 10.42.0.0/16 and 10.43.0.0/16).',
        ],
      };
  }
}

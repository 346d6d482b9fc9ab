// The node configuration for mirror mode (issue 23): what `pullthrough setup <client> --mirror
// URL` prints for the configured registries: containerd's hosts.toml files, the registries.conf
// entries of CRI-O, podman, buildah and skopeo, and dockerd's daemon.json (Docker Hub only).
// Pure: text in, text out; nothing is written.

export const MIRROR_CLIENTS = ['containerd', 'crio', 'podman', 'docker'] as const;
export type MirrorClient = (typeof MIRROR_CLIENTS)[number];

export interface MirrorUrl {
  readonly scheme: 'http' | 'https';
  /** `host[:port]` as the nodes reach the mirror. */
  readonly authority: string;
}

// Written into TOML and JSON: only what host names, IP literals and ports are made of.
const MIRROR_URL =
  /^(https?):\/\/((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?)\/?$/;

/** `http(s)://host[:port]`, or undefined when it is not one. */
export function parseMirrorUrl(input: string): MirrorUrl | undefined {
  const match = MIRROR_URL.exec(input);
  if (!match?.[1] || !match[2]) return undefined;
  return { scheme: match[1] as MirrorUrl['scheme'], authority: match[2].toLowerCase() };
}

/** `docker.io` in a hosts.toml `server`: the API host containerd would use for it. */
const serverOf = (registry: string): string => (registry === 'docker.io' ? 'registry-1.docker.io' : registry);

/**
 * The configuration text for `client`. `registries` is pullthrough's list; wildcard entries
 * cannot be written as a mirror entry and are listed in a comment instead. `defaultRegistry` is
 * mirror.default, which dockerd's bare names need to be docker.io.
 */
export function mirrorSetup(
  client: MirrorClient,
  mirror: MirrorUrl,
  registries: readonly string[],
  defaultRegistry: string | null,
): string {
  const named = registries.filter((registry) => !registry.startsWith('*.'));
  const skipped = registries.filter((registry) => registry.startsWith('*.'));
  const url = `${mirror.scheme}://${mirror.authority}`;
  const lines = [
    `# pullthrough mirror mode for ${client}: pulls go to ${url}, which serves them from its cache.`,
  ];
  if (skipped.length > 0 && client !== 'docker') {
    lines.push(`# Not listed (a mirror entry names one registry): ${skipped.join(', ')}.`);
  }
  switch (client) {
    case 'containerd':
      lines.push(...containerdHosts(url, named));
      break;
    case 'crio':
    case 'podman':
      lines.push(...registriesConf(client, mirror, named));
      break;
    case 'docker':
      lines.push(...dockerDaemon(mirror, url, registries, defaultRegistry));
      break;
  }
  return `${lines.join('\n')}\n`;
}

function containerdHosts(url: string, registries: readonly string[]): string[] {
  const lines = [
    '# containerd adds ?ns=<registry> to every request to the mirror; the registry itself stays the',
    '# fallback when the mirror cannot answer. containerd 1.x reads these files once its CRI config',
    '# points at them (then restart containerd):',
    '#   [plugins."io.containerd.grpc.v1.cri".registry]',
    '#     config_path = "/etc/containerd/certs.d"',
    '# containerd 2.x reads /etc/containerd/certs.d by default. ctr: --hosts-dir /etc/containerd/certs.d',
  ];
  for (const registry of registries) {
    lines.push(
      '',
      `# /etc/containerd/certs.d/${registry}/hosts.toml`,
      `server = "https://${serverOf(registry)}"`,
      '',
      `[host."${url}"]`,
      '  capabilities = ["pull", "resolve"]',
    );
  }
  return lines;
}

function registriesConf(
  client: 'crio' | 'podman',
  mirror: MirrorUrl,
  registries: readonly string[],
): string[] {
  const reload =
    client === 'crio'
      ? 'then restart CRI-O (systemctl restart crio)'
      : 'podman, buildah and skopeo read it at their next run';
  // A mirror location is `host[:port]/namespace`, and a namespace cannot hold a `:`.
  const withPort = registries.filter((registry) => registry.includes(':'));
  const lines = [
    '# The mirror is tried first and the registry itself after it. Names are sent as',
    `# /v2/<registry>/<repository>/..., which the mirror reads. ${reload}.`,
    ...(withPort.length > 0
      ? [`# Not listed (a location's namespace cannot hold a port): ${withPort.join(', ')}.`]
      : []),
    '',
    '# /etc/containers/registries.conf.d/50-pullthrough-mirror.conf',
  ];
  for (const registry of registries.filter((entry) => !entry.includes(':'))) {
    lines.push(
      '[[registry]]',
      `prefix = "${registry}"`,
      `location = "${registry}"`,
      '[[registry.mirror]]',
      `location = "${mirror.authority}/${registry}"`,
      ...(mirror.scheme === 'http' ? ['insecure = true'] : []),
      '',
    );
  }
  return lines;
}

function dockerDaemon(
  mirror: MirrorUrl,
  url: string,
  registries: readonly string[],
  defaultRegistry: string | null,
): string[] {
  const lines = [
    '# dockerd uses registry-mirrors for Docker Hub only, and sends bare names (/v2/library/alpine/...):',
    '# the mirror needs mirror.default: docker.io. Other registries: through the proxy (pullthrough',
    '# setup docker --proxy URL). Merge into /etc/docker/daemon.json, then restart docker.',
  ];
  if (!registries.includes('docker.io')) {
    lines.push('# WARNING: docker.io is not on the registries list: the mirror will refuse these pulls.');
  }
  if (defaultRegistry !== 'docker.io') {
    lines.push(`# WARNING: mirror.default is ${defaultRegistry ?? 'not set'}: set it to docker.io.`);
  }
  const daemon = {
    'registry-mirrors': [url],
    // Plain HTTP: dockerd must be told the mirror has no TLS.
    ...(mirror.scheme === 'http' ? { 'insecure-registries': [mirror.authority] } : {}),
  };
  lines.push('', '# /etc/docker/daemon.json', JSON.stringify(daemon, null, 2));
  return lines;
}

// The shell script that points one host's container client at pullthrough: the proxy setting of
// clients.ts written whole (so a second run writes the same files), the proxy's CA fetched from
// its /ca.crt into the system trust store, the daemon restarted. `pullthrough setup` prints it and
// GET /setup/systemd serves it. Pure: text in, text out. PULLTHROUGH_SETUP_ROOT (default /)
// moves the files written, for a test or an image being built; the commands still run here.
import type { ClientPlan } from './clients.ts';

// What may appear in a proxy URL: it is written into a shell script, a systemd unit and TOML, so
// no quote, backslash, space, `$` or backquote can be allowed in (the Host header is the client's).
const USERINFO = '[A-Za-z0-9._~%-]+(?::[A-Za-z0-9._~%-]*)?@';
const HOST =
  '(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+\\])';
const PROXY_URL = new RegExp(`^http://(?:${USERINFO})?${HOST}(?::\\d{1,5})?/?$`);
const HOST_PORT = new RegExp(`^${HOST}(?::\\d{1,5})?$`);

/** `http://[user:pass@]host[:port]` without a trailing slash, or undefined when it is not one. */
export function parseProxyUrl(input: string): string | undefined {
  return PROXY_URL.test(input) ? input.replace(/\/$/, '') : undefined;
}

/** The proxy URL a request reached, from its Host header; undefined for anything else. */
export function proxyUrlFromHost(host: string | undefined): string | undefined {
  return host !== undefined && HOST_PORT.test(host) ? `http://${host}` : undefined;
}

/** The whole script, for `proxyUrl` as parseProxyUrl returns it. */
export function setupScript(plan: ClientPlan, proxyUrl: string, invocation: string): string {
  const noProxy = plan.noProxy.join(',');
  const what = 'unit' in plan.target ? `${plan.target.unit}.service` : 'podman';
  return [
    '#!/usr/bin/env bash',
    `# pullthrough setup for ${plan.client}: ${what} through the proxy ${proxyUrl}, and its CA trusted.`,
    `# Run it as root on each host: ${invocation}`,
    '# Running it again writes the same files. PULLTHROUGH_SETUP_ROOT=DIR writes them under DIR instead',
    '# of / (the commands below still run on this host).',
    ...plan.notes.map((note) => `# ${note}`),
    'set -euo pipefail',
    `PROXY=${shellQuote(proxyUrl)}`,
    'ROOT="${PULLTHROUGH_SETUP_ROOT:-}"',
    'ROOT="${ROOT%/}"',
    '',
    ...HELPERS,
    '',
    ...proxySetting(plan, proxyUrl, noProxy),
    '',
    ...TRUST_CA,
    '',
    ...restart(plan),
    `echo "pullthrough: ${what} now uses $PROXY"`,
    '',
  ].join('\n');
}

const HELPERS = [
  '# put FILE: standard input becomes FILE (under $ROOT), written whole through a temp file.',
  'put() {',
  '  local file="$ROOT$1"',
  '  install -d -m 0755 "$(dirname "$file")"',
  '  cat > "$file.pullthrough-tmp"',
  '  chmod 0644 "$file.pullthrough-tmp"',
  '  mv -f "$file.pullthrough-tmp" "$file"',
  '}',
  '',
  '# fetch URL: the body on standard output.',
  'fetch() {',
  '  if command -v curl > /dev/null 2>&1; then curl -fsS --noproxy "*" "$1"',
  '  else wget -q --no-proxy -O - "$1"; fi',
  '}',
];

function proxySetting(plan: ClientPlan, proxyUrl: string, noProxy: string): string[] {
  if ('containersConf' in plan.target) {
    // containers.conf [engine] env: the environment podman (and buildah, skopeo) run with.
    const env = [`HTTP_PROXY=${proxyUrl}`, `HTTPS_PROXY=${proxyUrl}`, `NO_PROXY=${noProxy}`];
    return [
      '# 1. The proxy for podman, buildah and skopeo: the environment containers.conf gives them.',
      "put /etc/containers/containers.conf.d/pullthrough-proxy.conf << 'EOF'",
      '[engine]',
      `env = [${env.map((value) => `"${value}"`).join(', ')}]`,
      'EOF',
    ];
  }
  // systemd expands % in unit files: a percent-encoded password must be written %%.
  const unitValue = (value: string) => value.replaceAll('%', '%%');
  return [
    `# 1. The proxy in ${plan.target.unit}.service's environment: a systemd drop-in.`,
    `put /etc/systemd/system/${plan.target.unit}.service.d/http-proxy.conf << 'EOF'`,
    '[Service]',
    `Environment="HTTP_PROXY=${unitValue(proxyUrl)}"`,
    `Environment="HTTPS_PROXY=${unitValue(proxyUrl)}"`,
    `Environment="NO_PROXY=${noProxy}"`,
    'EOF',
  ];
}

const TRUST_CA = [
  "# 2. The proxy's CA in the system trust store (Debian, Ubuntu; RHEL, Fedora).",
  'ca="$(fetch "$PROXY/ca.crt")"',
  'case "$ca" in',
  '  *"-----BEGIN CERTIFICATE-----"*) ;;',
  '  *) echo "pullthrough: $PROXY/ca.crt is not a PEM certificate" >&2; exit 1 ;;',
  'esac',
  'if command -v update-ca-certificates > /dev/null 2>&1; then',
  '  printf \'%s\\n\' "$ca" | put /usr/local/share/ca-certificates/pullthrough.crt',
  '  update-ca-certificates',
  'elif command -v update-ca-trust > /dev/null 2>&1; then',
  '  printf \'%s\\n\' "$ca" | put /etc/pki/ca-trust/source/anchors/pullthrough.crt',
  '  update-ca-trust extract',
  'else',
  '  echo "pullthrough: no update-ca-certificates or update-ca-trust: trust $PROXY/ca.crt by hand" >&2',
  '  exit 1',
  'fi',
];

function restart(plan: ClientPlan): string[] {
  if (!('unit' in plan.target))
    return ['# 3. Nothing to restart: podman reads containers.conf at every command.'];
  const unit = plan.target.unit;
  return [
    `# 3. ${unit} restarted with its new environment (and the trust store read again).`,
    'systemctl daemon-reload',
    `systemctl restart ${unit}`,
  ];
}

/** `value` in single quotes, for a shell. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

// @ts-check
// Setting clients up: the proxy's CA to download, and the snippets that point a host or a
// node at this proxy (what `pullthrough setup` and /setup/systemd do), each with a copy button.
import { h, say } from './dom.js';
import { registryName } from './format.js';
import { state } from './state.js';

/** @param {HTMLElement} view */
export function setupView(view) {
  const body = h('div', {});
  view.replaceChildren(h('h1', {}, 'Setup'), body);
  return () => {
    const settings = state.stats?.settings;
    if (!settings) return;
    const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
    const proxy = `http://${host}:${settings.proxyPort}`;
    const snippets = [
      [
        'A docker host (systemd): the CA, HTTPS_PROXY for dockerd and containerd',
        `curl -fsS ${proxy}/setup/systemd | sudo bash`,
      ],
      [
        'One shell (skopeo, podman, crane…)',
        `export HTTPS_PROXY=${proxy}\ncurl -fsS ${proxy}/ca.crt | sudo tee /usr/local/share/ca-certificates/pullthrough.crt\nsudo update-ca-certificates`,
      ],
      [
        'Other clients (containerd, podman, CRI-O, BuildKit, Kubernetes)',
        `pullthrough setup containerd --proxy ${proxy} | sudo bash\n# or: docker, podman, crio, buildkit, kubernetes (pullthrough setup --help)`,
      ],
    ];
    if (settings.mirrorPort !== null) {
      snippets.push([
        'Mirror mode (containerd hosts.toml, registries.conf, daemon.json)',
        `pullthrough setup containerd --mirror http://${host}:${settings.mirrorPort}`,
      ]);
    }
    body.replaceChildren(
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'The CA'),
        h(
          'p',
          {},
          'Clients must trust this CA for the registries the proxy intercepts: ',
          settings.registries.map(registryName).join(', '),
          '.',
        ),
        h(
          'p',
          {},
          h(
            'a',
            { class: 'button', href: '/ca.crt', download: 'pullthrough-ca.crt' },
            'Download the CA (ca.crt)',
          ),
        ),
      ),
      ...snippets.map(([title, text], i) => snippet(`snippet-${i}`, title ?? '', text ?? '')),
    );
  };
}

/** @param {string} id @param {string} title @param {string} text */
function snippet(id, title, text) {
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      say('Copied.');
    } catch {
      say(
        'The browser refused the clipboard (it needs HTTPS or localhost): select the text instead.',
        'error',
      );
    }
  };
  return h(
    'section',
    { class: 'card' },
    h('h2', { id: `${id}-title` }, title),
    h('pre', { 'aria-labelledby': `${id}-title`, tabindex: 0 }, h('code', {}, text)),
    h('button', { type: 'button', onclick: () => void copy() }, 'Copy'),
  );
}

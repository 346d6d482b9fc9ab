// @ts-check
// The cache browser: registries → repositories → tags (digest, media type, size, platforms,
// last pulled, pulls since start), each level with its purge and pin buttons. Open levels stay
// open across refreshes.
import { pinRef, purge, togglePin } from './actions.js';
import { h, memo } from './dom.js';
import { ago, count, plural, registryName, shortDigest, shortType, size } from './format.js';
import { state } from './state.js';

/** Which <details> are open, by key, so that a refresh keeps them open. */
const open = new Set();

/**
 * The browser alone, in `section`: every registry, or `only` that one (its own page).
 * @param {HTMLElement} section @param {string} [only]
 */
export function imagesBrowser(section, only) {
  const render = memo(() =>
    section.replaceChildren(h('h2', { id: 'browser-title' }, 'Images'), ...listing(only)),
  );
  return () => render(JSON.stringify([state.images, state.pins, state.stats?.pulls]));
}

/** @param {string} registry @param {string} repository @param {string} tag */
function pullsOf(registry, repository, tag) {
  return state.stats?.pulls.find(
    (p) => p.registry === registry && p.repository === repository && p.tag === tag,
  );
}

/** @param {string} [only] */
function listing(only) {
  if (!state.images) return [h('p', { class: 'muted' }, 'Loading…')];
  const registries = state.images.filter((r) => only === undefined || r.registry === only);
  if (registries.length === 0) return [h('p', { class: 'muted' }, 'No tagged image in the cache.')];
  const pinned = new Set(state.pins?.runtime ?? []);
  return registries.map((r) =>
    details(
      `r:${r.registry}`,
      [
        h('span', { class: 'name' }, registryName(r.registry)),
        ` ${r.repositories.length === 1 ? '1 repository' : `${count(r.repositories.length)} repositories`}`,
      ],
      h(
        'p',
        {},
        h(
          'button',
          { type: 'button', class: 'danger', onclick: () => void purge({ registry: r.registry }) },
          `Purge all of ${registryName(r.registry)}`,
        ),
      ),
      r.repositories.map((repo) => {
        const repoPin = pinRef(r.registry, repo.repository);
        return details(
          `p:${r.registry}/${repo.repository}`,
          [h('span', { class: 'name' }, repo.repository), ` ${plural(repo.tags.length, 'tag')}`],
          h(
            'p',
            { class: 'actions' },
            h(
              'button',
              {
                type: 'button',
                class: 'danger',
                onclick: () => void purge({ registry: r.registry, repository: repo.repository }),
              },
              'Purge repository',
            ),
            h(
              'button',
              { type: 'button', onclick: () => void togglePin(repoPin, pinned.has(repoPin)) },
              pinned.has(repoPin) ? 'Unpin repository' : 'Pin repository',
            ),
          ),
          tagTable(r.registry, repo.repository, repo.tags, pinned),
        );
      }),
    ),
  );
}

/**
 * @param {string} key
 * @param {(string | Node)[]} summary
 * @param {...(Node | Node[])} body
 */
function details(key, summary, ...body) {
  const element = h(
    'details',
    { 'data-key': key, open: open.has(key) },
    h('summary', {}, ...summary),
    ...body.flat(),
  );
  element.addEventListener('toggle', () => (element.open ? open.add(key) : open.delete(key)));
  return element;
}

/**
 * @param {string} registry @param {string} repository
 * @param {import('./state.js').Tag[]} tags @param {Set<string>} pinned
 */
function tagTable(registry, repository, tags, pinned) {
  const head = ['Tag', 'Digest', 'Media type', 'Size', 'Platforms', 'Last pulled', 'Pulls', 'Actions'];
  const rows = tags.map((t) => {
    const ref = pinRef(registry, repository, t.tag);
    const pulls = pullsOf(registry, repository, t.tag);
    return h(
      'tr',
      { 'data-tag': `${registryName(registry)}/${repository}:${t.tag}` },
      h('th', { scope: 'row' }, t.tag),
      h('td', {}, h('code', { title: t.digest }, shortDigest(t.digest))),
      h('td', {}, shortType(t.mediaType)),
      h('td', { class: 'num' }, size(t.size)),
      h('td', {}, (t.platforms ?? []).join(', ') || '–'),
      h('td', {}, ago(t.lastUsed)),
      h('td', { class: 'num', 'data-col': 'pulls' }, String(pulls?.pulls ?? 0)),
      h(
        'td',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'danger small',
            'aria-label': `Purge ${repository}:${t.tag}`,
            onclick: () => void purge({ registry, repository, tag: t.tag }),
          },
          'Purge',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            'aria-label': `${pinned.has(ref) ? 'Unpin' : 'Pin'} ${repository}:${t.tag}`,
            onclick: () => void togglePin(ref, pinned.has(ref)),
          },
          pinned.has(ref) ? 'Unpin' : 'Pin',
        ),
      ),
    );
  });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          head.map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}

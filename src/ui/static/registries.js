// @ts-check
// The registries: each one's upstream condition (reachable, degraded, unreachable, idle; stale
// copies served), its recent upstream failures, Docker Hub's rate limit when it said one, its
// share of the cache against its budget, and on its own page its images (cache.js).
import { imagesBrowser } from './browser.js';
import { h, memo } from './dom.js';
import { ago, count, percent, ratio, registryName, size } from './format.js';
import { condition } from './overview.js';
import { state } from './state.js';

/** @param {HTMLElement} view */
export function registriesView(view) {
  const list = h('div', { class: 'grid' });
  view.replaceChildren(h('h1', {}, 'Registries'), list);
  const draw = memo(() => list.replaceChildren(...names().map((name) => registryCard(name, true))));
  return () =>
    draw(JSON.stringify([state.stats?.registries, state.summary?.registries, state.stats?.settings]));
}

/** @param {HTMLElement} view @param {string} registry `host:port` */
export function registryView(view, registry) {
  const card = h('div', {});
  const images = h('section', { class: 'card', 'aria-labelledby': 'browser-title' });
  view.replaceChildren(
    h('p', {}, h('a', { href: '#/registries' }, '← All registries')),
    h('h1', {}, registryName(registry)),
    card,
    images,
  );
  const cache = imagesBrowser(images, registry);
  return () => {
    card.replaceChildren(registryCard(registry, false));
    cache();
  };
}

/** Registries in the stats, the cache and the configuration, as `host:port`. */
function names() {
  const found = new Set([
    ...(state.stats?.registries ?? []).map((r) => r.registry),
    ...Object.keys(state.summary?.registries ?? {}),
    ...(state.stats?.settings.registries ?? [])
      .filter((r) => !r.startsWith('*.'))
      .map((r) => (r.includes(':') ? r : `${r}:443`)),
  ]);
  return [...found].sort();
}

/** @param {string} registry @param {boolean} linked */
function registryCard(registry, linked) {
  const r = state.stats?.registries.find((s) => s.registry === registry);
  const used = state.summary?.registries[registry] ?? 0;
  const budget = state.stats?.settings.budgets.find(
    (b) => b.registry === registry || `${b.registry}:443` === registry,
  );
  const title = linked
    ? h('a', { href: `#/registries/${encodeURIComponent(registry)}` }, registryName(registry))
    : registryName(registry);
  const failures = Object.entries(r?.recentFailures ?? {})
    .map(([why, n]) => `${n}× ${why}`)
    .join(', ');
  return h(
    'section',
    { class: 'card', 'data-registry': registry },
    h('h2', {}, title, ' ', r ? condition(r) : h('span', { class: 'badge idle' }, 'no traffic yet')),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Hit ratio'),
      h('dd', {}, r ? percent(ratio(r.counts.hits, r.counts.answerable)) : '–'),
      h('dt', {}, 'Served from cache'),
      h('dd', {}, size(r?.counts.bytesCache ?? 0)),
      h('dt', {}, 'Fetched upstream'),
      h('dd', {}, size(r?.counts.bytesUpstream ?? 0)),
      h('dt', {}, 'Upstream failures (5 min)'),
      h('dd', {}, failures || 'none'),
      h('dt', {}, 'Last failure'),
      h('dd', {}, r?.lastFailure ? ago(r.lastFailure) : 'none'),
      h('dt', {}, 'Rate limit left'),
      h(
        'dd',
        {},
        r?.rateLimitRemaining === null || r === undefined
          ? 'not reported'
          : `${count(r.rateLimitRemaining)}${r.rateLimitLimit === null ? '' : ` of ${count(r.rateLimitLimit)}`}`,
      ),
      h('dt', {}, 'In the cache'),
      h(
        'dd',
        {},
        `${size(used)}${budget ? ` of a ${size(budget.maxSize)} budget` : ''}${state.summary ? ` (${percent(ratio(used, state.summary.bytes))} of the cache)` : ''}`,
      ),
    ),
  );
}

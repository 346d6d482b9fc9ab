// @ts-check
// The overview: what the cache saves (hit ratio by requests and by bytes, bytes from the cache
// and from upstream), live traffic (requests/s, pulls in flight with their progress, tunnels),
// the upstreams at a glance and the recent evictions and changes. Charts over the last hour.
import { TimeChart } from './charts.js';
import { h, memo } from './dom.js';
import { ago, count, percent, ratio, registryName, shortDigest, size } from './format.js';
import { state } from './state.js';

/** @param {HTMLElement} view */
export function overview(view) {
  const kpis = h('div', { class: 'kpis', 'aria-label': 'Totals since start' });
  const ratioBox = h('div', { class: 'chart' });
  const bytesBox = h('div', { class: 'chart' });
  const lists = h('div', { class: 'grid' });
  view.replaceChildren(
    h('h1', {}, 'Overview'),
    kpis,
    h(
      'section',
      { class: 'card', 'aria-label': 'Charts' },
      h('div', { class: 'charts' }, ratioBox, bytesBox),
    ),
    lists,
  );
  const ratios = new TimeChart(ratioBox, {
    title: 'Hit ratio',
    ratio: true,
    format: (v) => percent(v),
    series: [
      { label: 'by requests', color: '#1f6feb', value: (p) => p.hitRatio },
      { label: 'by bytes', color: '#b35900', dash: [6, 4], value: (p) => p.byteHitRatio },
    ],
  });
  const bytes = new TimeChart(bytesBox, {
    title: 'Bytes per second',
    format: (v) => `${size(v)}/s`,
    series: [
      { label: 'from cache', color: '#1a7f37', value: (p) => p.cacheBytesPerSecond },
      { label: 'from upstream', color: '#cf222e', dash: [6, 4], value: (p) => p.upstreamBytesPerSecond },
    ],
  });
  const drawLists = memo(() => {
    if (state.stats)
      lists.replaceChildren(inFlight(state.stats), upstreams(state.stats), recentEvents(state.stats));
  });
  return () => {
    const stats = state.stats;
    if (!stats) return;
    kpis.replaceChildren(...kpiCards(stats));
    ratios.set(state.points);
    bytes.set(state.points);
    drawLists(JSON.stringify([stats.fills, stats.registries, stats.events]));
  };
}

/** @param {import('./state.js').Stats} stats */
function kpiCards(stats) {
  const t = stats.totals;
  const last = state.points.at(-1);
  /** @param {string} label @param {string} value @param {string} [note] @param {string} [id] */
  const card = (label, value, note, id) =>
    h(
      'div',
      { class: 'kpi', ...(id ? { 'data-kpi': id } : {}) },
      h('span', { class: 'label' }, label),
      h('strong', {}, value),
      note ? h('span', { class: 'note' }, note) : null,
    );
  return [
    card(
      'Hit ratio (requests)',
      percent(ratio(t.hits, t.answerable)),
      `${count(t.hits)} of ${count(t.answerable)}`,
      'hit-ratio',
    ),
    card(
      'Hit ratio (bytes)',
      percent(ratio(t.bytesCache, t.bytesCache + t.bytesUpstream)),
      undefined,
      'byte-hit-ratio',
    ),
    card('Served from cache', size(t.bytesCache), 'upstream bytes saved', 'bytes-cache'),
    card('Fetched upstream', size(t.bytesUpstream), undefined, 'bytes-upstream'),
    card(
      'Requests/s',
      last ? last.requestsPerSecond.toFixed(1) : '–',
      `${count(t.requests)} since start`,
      'rps',
    ),
    card('Pulls in flight', String(stats.fills.length), `${count(stats.tunnelsOpen)} tunnels open`, 'fills'),
  ];
}

/** @param {import('./state.js').Stats} stats */
function inFlight(stats) {
  const rows = stats.fills.map((fill) => {
    const done = fill.size ? fill.received / fill.size : null;
    return h(
      'li',
      {},
      h('code', {}, shortDigest(fill.digest)),
      ' ',
      h('progress', { max: 1, value: done ?? 0, 'aria-label': `progress of ${fill.digest}` }),
      ` ${size(fill.received)} of ${size(fill.size)}`,
    );
  });
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Pulls in flight'),
    rows.length ? h('ul', { class: 'plain' }, rows) : h('p', { class: 'muted' }, 'None right now.'),
  );
}

/** @param {import('./state.js').Stats} stats */
function upstreams(stats) {
  const rows = stats.registries.map((r) =>
    h(
      'li',
      {},
      h('a', { href: `#/registries/${encodeURIComponent(r.registry)}` }, registryName(r.registry)),
      ' ',
      condition(r),
    ),
  );
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Upstreams'),
    rows.length ? h('ul', { class: 'plain' }, rows) : h('p', { class: 'muted' }, 'No registry traffic yet.'),
  );
}

/** A badge: the condition in words (colour is only a help). @param {import('./state.js').RegistryState} r */
export function condition(r) {
  const words = { reachable: 'reachable', degraded: 'degraded', unreachable: 'unreachable', idle: 'idle' };
  return h(
    'span',
    { class: `badge ${r.condition}` },
    words[r.condition],
    r.servingStale ? ', serving stale' : '',
  );
}

/** @param {import('./state.js').Stats} stats */
function recentEvents(stats) {
  const rows = stats.events
    .slice(0, 15)
    .map((e) => h('li', {}, h('span', { class: 'muted' }, ago(e.t)), ' ', e.event, ' ', describe(e.fields)));
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Recent evictions and changes'),
    rows.length
      ? h('ul', { class: 'plain' }, rows)
      : h('p', { class: 'muted' }, 'Nothing evicted or purged since start.'),
  );
}

/** @param {Record<string, unknown>} fields */
function describe(fields) {
  const parts = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) continue;
    if (key === 'digest' && typeof value === 'string') parts.push(shortDigest(value));
    else if (/bytes$/i.test(key) && typeof value === 'number') parts.push(`${key}=${size(value)}`);
    else if (key === 'ref' || key === 'registry') parts.push(String(value));
    else parts.push(`${key}=${Array.isArray(value) ? value.join(',') : String(value)}`);
  }
  return parts.join(' ');
}

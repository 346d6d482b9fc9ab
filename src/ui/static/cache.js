// @ts-check
// The cache page: usage against the cap and the free-space guard, the largest and the
// most-pulled images, the pins, warming an image with its progress, and the browser
// (browser.js).
import { togglePin, warmImage } from './actions.js';
import { imagesBrowser } from './browser.js';
import { h, memo } from './dom.js';
import { percent, plural, registryName, size } from './format.js';
import { state } from './state.js';

/** @param {HTMLElement} view */
export function cacheView(view) {
  const slots = [0, 1, 2].map(() => h('div', { class: 'slot' }));
  const pinList = h('div', {});
  const warmList = h('div', {});
  const top = h(
    'div',
    { class: 'grid' },
    ...slots,
    h('section', { class: 'card' }, h('h2', {}, 'Pins'), pinList, pinForm),
    h('section', { class: 'card' }, h('h2', {}, 'Warm an image'), warmForm, warmList),
  );
  const browser = h('section', { class: 'card', 'aria-labelledby': 'browser-title' });
  view.replaceChildren(h('h1', {}, 'Cache'), top, browser);
  const images = imagesBrowser(browser);
  const parts = [
    memo(() => slots[0]?.replaceChildren(usage())),
    memo(() => slots[1]?.replaceChildren(largest())),
    memo(() => slots[2]?.replaceChildren(mostPulled())),
    memo(() => pinList.replaceChildren(pins())),
    memo(() => warmList.replaceChildren(warmJobs())),
  ];
  return () => {
    const keys = [
      [state.summary, state.summaryError, state.stats?.settings.minFree],
      state.images,
      state.stats?.pulls,
      state.pins,
      state.warm,
    ];
    parts.forEach((part, i) => part(JSON.stringify(keys[i])));
    images();
  };
}

function usage() {
  const s = state.summary;
  if (!s)
    return h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Usage'),
      h('p', { class: 'muted' }, state.summaryError ?? 'Loading…'),
    );
  const minFree = state.stats?.settings.minFree;
  const minFreeBytes = !minFree
    ? null
    : 'bytes' in minFree
      ? minFree.bytes
      : s.filesystem === null
        ? null
        : (s.filesystem * minFree.percent) / 100;
  return h(
    'section',
    { class: 'card', 'data-section': 'usage' },
    h('h2', {}, 'Usage'),
    h(
      'label',
      { for: 'usage-bar' },
      `${size(s.bytes)} of ${size(s.maxSize)} (${percent(s.bytes / s.maxSize)})`,
    ),
    h('meter', { id: 'usage-bar', min: 0, max: s.maxSize, high: s.maxSize * 0.95, value: s.bytes }),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Images'),
      h('dd', {}, String(s.images)),
      h('dt', {}, 'Tags'),
      h('dd', {}, String(s.tags)),
      h('dt', {}, 'Files'),
      h('dd', {}, String(s.files)),
      h('dt', {}, 'Free on disk'),
      h('dd', {}, s.free === null ? '–' : `${size(s.free)} (keeps ${size(minFreeBytes)} free)`),
    ),
  );
}

/** Every tag with its registry and repository, flat. */
function allTags() {
  return (state.images ?? []).flatMap((r) =>
    r.repositories.flatMap((repo) =>
      repo.tags.map((tag) => ({ registry: r.registry, repository: repo.repository, tag })),
    ),
  );
}

function largest() {
  const rows = allTags()
    .sort((a, b) => b.tag.size - a.tag.size)
    .slice(0, 5);
  return top(
    'Largest images',
    rows.map((r) => [`${registryName(r.registry)}/${r.repository}:${r.tag.tag}`, size(r.tag.size)]),
  );
}

function mostPulled() {
  const rows = [...(state.stats?.pulls ?? [])].sort((a, b) => b.pulls - a.pulls).slice(0, 5);
  return top(
    'Most pulled (since start)',
    rows.map((p) => [`${registryName(p.registry)}/${p.repository}:${p.tag}`, plural(p.pulls, 'pull')]),
  );
}

/** @param {string} title @param {string[][]} rows */
function top(title, rows) {
  return h(
    'section',
    { class: 'card' },
    h('h2', {}, title),
    rows.length === 0
      ? h('p', { class: 'muted' }, 'Nothing yet.')
      : h(
          'ol',
          { class: 'top' },
          rows.map(([name, value]) =>
            h('li', {}, h('span', { class: 'name' }, name), h('span', { class: 'value' }, value)),
          ),
        ),
  );
}

/** Built once, so that what is typed survives refreshes. */
const pinInput = h('input', {
  id: 'pin-ref',
  name: 'ref',
  placeholder: 'docker.io/library/postgres:16',
  required: true,
});
const pinForm = h(
  'form',
  {
    class: 'inline',
    onsubmit: (event) => {
      event.preventDefault();
      void togglePin(pinInput.value.trim(), false);
    },
  },
  h('label', { for: 'pin-ref' }, 'Pin'),
  pinInput,
  h('button', { type: 'submit' }, 'Pin'),
);

function pins() {
  const p = state.pins ?? { config: [], runtime: [] };
  const items = [
    ...p.config.map((ref) =>
      h('li', {}, h('code', {}, ref), ' ', h('span', { class: 'muted' }, '(cache.pin)')),
    ),
    ...p.runtime.map((ref) =>
      h(
        'li',
        {},
        h('code', {}, ref),
        ' ',
        h('button', { type: 'button', class: 'small', onclick: () => void togglePin(ref, true) }, 'Unpin'),
      ),
    ),
  ];
  return items.length ? h('ul', { class: 'plain' }, items) : h('p', { class: 'muted' }, 'No pins.');
}

/** Built once, so that what is typed survives refreshes. */
const warmForm = (() => {
  const ref = h('input', {
    id: 'warm-ref',
    name: 'ref',
    placeholder: 'docker.io/library/alpine:3.20',
    required: true,
  });
  const platform = h('input', {
    id: 'warm-platform',
    name: 'platform',
    placeholder: 'linux/amd64,linux/arm64 or all',
  });
  return h(
    'form',
    {
      class: 'stacked',
      onsubmit: (event) => {
        event.preventDefault();
        void warmImage(ref.value.trim(), platform.value.trim());
      },
    },
    h('label', { for: 'warm-ref' }, 'Image'),
    ref,
    h('label', { for: 'warm-platform' }, 'Platforms (optional)'),
    platform,
    h('button', { type: 'submit' }, 'Warm'),
  );
})();

function warmJobs() {
  const jobs = state.warm.slice(0, 5).map((job) => {
    const outcome =
      job.state === 'running'
        ? `${size(job.done)} of ${size(job.total)}`
        : job.state === 'failed'
          ? `failed: ${job.error}`
          : job.result && job.result.fetchedBlobs === 0
            ? `cached already (${size(job.result.bytes)})`
            : `fetched ${job.result?.fetchedBlobs} blobs, ${size(job.result?.fetchedBytes)}`;
    return h(
      'li',
      { 'data-warm': job.ref, 'data-state': job.state },
      h('code', {}, job.ref),
      ' ',
      h('progress', {
        max: job.total || 1,
        value: job.state === 'done' ? job.total || 1 : job.done,
        'aria-label': `progress of ${job.ref}`,
      }),
      ' ',
      h('span', { class: job.state === 'failed' ? 'error' : 'muted' }, outcome),
    );
  });
  return jobs.length ? h('ul', { class: 'plain' }, jobs) : '';
}

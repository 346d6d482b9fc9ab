// @ts-check
// The dashboard's entry: signing in (the token is checked against the admin API before it is
// kept), the sections by URL hash (#/, #/cache, #/registries[/name], #/setup), and polling:
// the stats every few seconds, the listing less often. Nothing here talks to a registry.
import { ApiError, call, forgetToken, keepToken, token, whenRefused } from './api.js';
import { cacheView } from './cache.js';
import { byId } from './dom.js';
import { overview } from './overview.js';
import { registriesView, registryView } from './registries.js';
import { setupView } from './setup.js';
import { onChange, refreshImages, refreshStats, reset } from './state.js';

const STATS_EVERY_MS = 3000;
const IMAGES_EVERY_MS = 15000;

/** @type {ReturnType<typeof setInterval>[]} */
let timers = [];
/** @type {() => void} */
let unsubscribe = () => undefined;

function signedOut(/** @type {string} */ reason = '') {
  timers.forEach(clearInterval);
  timers = [];
  unsubscribe();
  reset();
  forgetToken();
  byId('nav').hidden = true;
  byId('view').replaceChildren();
  byId('login').hidden = false;
  byId('login-error').textContent = reason;
  byId('token').focus();
}

async function signedIn() {
  byId('login').hidden = true;
  byId('nav').hidden = false;
  route();
  await Promise.all([refreshStats(), refreshImages()]).catch(() => undefined);
  timers = [
    setInterval(() => void refreshStats().catch(() => undefined), STATS_EVERY_MS),
    setInterval(() => void refreshImages().catch(() => undefined), IMAGES_EVERY_MS),
  ];
}

/** Renders the section the hash names; it redraws on every change of the state. */
function route() {
  if (!token()) return;
  const view = byId('view');
  const [, section = '', name] = location.hash.split('/');
  const render =
    section === 'cache'
      ? cacheView(view)
      : section === 'registries' && name
        ? registryView(view, decodeURIComponent(name))
        : section === 'registries'
          ? registriesView(view)
          : section === 'setup'
            ? setupView(view)
            : overview(view);
  for (const link of byId('nav').querySelectorAll('a')) {
    const current = link.getAttribute('href') === `#/${section}`;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  unsubscribe();
  unsubscribe = onChange(render);
  render();
}

/** @param {SubmitEvent} event */
async function signIn(event) {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (byId('token'));
  const error = byId('login-error');
  error.textContent = '';
  try {
    await call('/admin/stats?since=' + Date.now(), { given: input.value });
  } catch (e) {
    error.textContent =
      e instanceof ApiError && e.status === 401
        ? 'Wrong token: the server refused it. Use the admin.token of this proxy.'
        : `Cannot sign in: ${e instanceof Error ? e.message : String(e)}`;
    input.select();
    return;
  }
  keepToken(input.value);
  input.value = '';
  await signedIn();
}

byId('login-form').addEventListener('submit', (event) => void signIn(event));
byId('logout').addEventListener('click', () => signedOut());
whenRefused(() => signedOut('The server refused the token (it may have changed): sign in again.'));
window.addEventListener('hashchange', () => {
  route();
  byId('main').focus();
});
if (token()) void signedIn();
else signedOut();

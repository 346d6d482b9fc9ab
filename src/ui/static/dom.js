// @ts-check
// Building the page: one small element helper (text is always set as text, never as HTML, so
// nothing from a registry name or tag can inject markup), redrawing only what changed, and the
// status line.

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | ((event: Event) => void) | undefined>} Attrs
 */

/**
 * An element with attributes (`on…` ones are listeners) and children (strings become text).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/**
 * `render`, only when its key changed: a refresh that changed nothing keeps the page as it is,
 * the keyboard focus and what is typed included.
 * @param {() => void} render
 */
export function memo(render) {
  /** @type {string | undefined} */
  let last;
  return (/** @type {string} */ key) => {
    if (key === last) return;
    last = key;
    render();
  };
}

/** @param {string} id */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing`);
  return element;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let statusTimer;

/**
 * A short message in the live region (read by screen readers), gone after a while.
 * @param {string} text
 * @param {'ok' | 'error'} [kind]
 */
export function say(text, kind = 'ok') {
  const status = byId('status');
  status.textContent = text;
  status.className = `toast ${kind}`;
  status.hidden = false;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (status.hidden = true), kind === 'error' ? 10000 : 5000);
}

// Small helpers shared by the dashboard's views: DOM building without innerHTML, the API
// client, and formatting of costs, tokens, times and durations.

/** Builds an element: h('a', {href: '#/'}, 'text', child, ...). Strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

const scripts = new Map();

/**
 * Loads a classic script of this origin once (later calls get the same promise). The big
 * vendored libraries (Mermaid, the asciinema player) load this way when a session page needs
 * them, so the overview's first render does not wait for them to be parsed.
 */
export function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const el = document.createElement('script');
      el.src = src;
      el.async = true;
      el.onload = () => resolve();
      el.onerror = () => {
        scripts.delete(src);
        reject(new Error(`could not load ${src}`));
      };
      document.head.append(el);
    }));
  }
  return scripts.get(src);
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An API error: the status and the server's `{"error": ...}` message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The event `api()` dispatches on `window` when the service answers 401 (not logged in). */
export const UNAUTHORIZED_EVENT = 'ctrace:unauthorized';

/**
 * GET `path` as JSON (or text with `{text: true}`); throws ApiError on a non-2xx answer. A 401
 * (the service asks for its token and this browser has no session) also dispatches
 * UNAUTHORIZED_EVENT, for the page to point at /login.
 */
export async function api(path, { text = false } = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: text ? 'text/plain' : 'application/json' } });
  } catch (e) {
    throw new ApiError(0, `cannot reach the service (${e.message})`);
  }
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
    throw new ApiError(401, 'not logged in: log in at /login');
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) message = `${response.status}: ${body.error}`;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return text ? response.text() : response.json();
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The API's `until` (exclusive) for an inclusive date `YYYY-MM-DD` from a date field. */
export function untilParam(date) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date || '')) return date || '';
  const next = new Date(`${date}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString().slice(0, 10);
}

/** An error box (role=alert) naming what failed. */
export function errorBox(what, error) {
  return h('p', { class: 'error', role: 'alert' }, `${what} failed: ${error.message || error}`);
}

/**
 * A panel that shows "Loading…" until `promise` settles, then what `render(value)` returns
 * (an element with the same id), marked `data-done` for tests and screen readers. `wide`
 * spans the page's grid; `quiet` keeps the placeholder hidden (a panel that only appears when
 * there is something to show: `render` returns a hidden element otherwise).
 */
export function later(id, title, promise, render, { wide = false, quiet = false } = {}) {
  const cls = wide ? 'panel wide' : 'panel';
  const box = h('section', { class: cls, id, 'aria-labelledby': `${id}-h`, 'aria-busy': 'true', hidden: quiet },
    h('h3', { id: `${id}-h` }, title), h('p', { class: 'loading' }, 'Loading…'));
  promise.then((value) => {
    let next;
    if (value && value.error) {
      next = h('section', { class: cls, id, 'aria-labelledby': `${id}-h` },
        h('h3', { id: `${id}-h` }, title), errorBox(`Loading ${title.toLowerCase()}`, value.error));
    } else {
      next = render(value);
    }
    next.dataset.done = 'true';
    // After a live refresh the placeholder may have been swapped for the previous panel.
    const current = box.isConnected ? box : document.getElementById(id);
    if (current) current.replaceWith(next);
  });
  return box;
}

export function usd(value) {
  if (value === null || value === undefined) return '–';
  if (value !== 0 && Math.abs(value) < 0.01) return `$${value.toFixed(4)}`;
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function tokens(n) {
  if (n === null || n === undefined) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A duration in ns as "1h 02m", "3m 04s", "1.3s", "34ms". */
export function duration(ns) {
  if (ns === null || ns === undefined) return '–';
  const ms = ns / 1e6;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const hours = Math.floor(m / 60);
  return `${hours}h ${String(m % 60).padStart(2, '0')}m`;
}

/** A local date and time from an RFC 3339 string or ns since the epoch. */
export function when(value) {
  if (value === null || value === undefined) return '–';
  const date = typeof value === 'number' ? new Date(value / 1e6) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function shortId(id) {
  return id && id.length > 12 ? id.slice(0, 8) : id;
}

/** The last path component of a project directory. */
export function projectName(project) {
  if (!project) return '–';
  const parts = project.split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : project;
}

/** A status as a text badge (never colour alone). */
export function badge(status) {
  const s = status || 'unknown';
  return h('span', { class: `badge status-${s.replace(/[^a-z_-]/gi, '')}` }, s);
}

// The dashboard of `ctrace serve`: hash routing between the overview (#/) and a session
// (#/session/<id>?at=<offset>), the live activity strip fed by /api/stream, and the search box.
// See docs/dashboard.md.

import { h, fill, api, query, errorBox, when, shortId, UNAUTHORIZED_EVENT } from './util.js';
import { renderOverview, refreshOverview } from './overview.js';
import { renderSession, refreshSession } from './session.js';
import { renderSearch } from './search.js';

const main = document.getElementById('main');
const activity = document.getElementById('activity-list');
const liveState = document.getElementById('live-state');
const ACTIVITY_MAX = 30;

/** The current route: {view, id, params}. */
function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, q] = hash.split('?');
  const params = new URLSearchParams(q || '');
  const session = path.match(/^\/session\/(.+)$/);
  if (session) return { view: 'session', id: decodeURIComponent(session[1]), params };
  if (path === '/search') return { view: 'search', params };
  return { view: 'overview', params };
}

let current = null;

async function show() {
  const r = route();
  current = r;
  document.body.dataset.view = r.view;
  // Each navigation renders into its own element: a slower render of the previous route
  // (still awaiting its requests) fills its detached element, never the page.
  const view = document.createElement('div');
  main.replaceChildren(view);
  main.setAttribute('aria-busy', 'true');
  try {
    if (r.view === 'session') await renderSession(view, r.id, r.params);
    else if (r.view === 'search') await renderSearch(view, r.params);
    else await renderOverview(view, r.params);
  } catch (e) {
    fill(view, errorBox('Loading the page', e));
  } finally {
    if (current === r) main.setAttribute('aria-busy', 'false');
  }
  // Move focus to the new content for keyboard and screen-reader users, but never away from
  // something the user is typing in or working with outside it (the search box in the header,
  // say, while a slow page is still loading).
  const active = document.activeElement;
  if (current === r && (!active || active === document.body || main.contains(active))) {
    main.focus({ preventScroll: true });
  }
}

// The skip link must not change the hash (the hash is the route).
document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

// ---- the search box in the header ----
document.getElementById('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = document.getElementById('search-q').value.trim();
  if (!q) return;
  const params = { q };
  if (current && current.view === 'session' && document.getElementById('search-this').checked) {
    params.session = current.id;
  }
  location.hash = `#/search${query(params)}`;
});

// ---- live activity: one EventSource for the page ----
let refreshTimer = null;

function eventName(record) {
  const body = record.body || {};
  const payload = body.payload || {};
  if (payload.hook_event_name) {
    return payload.tool_name ? `${payload.hook_event_name} ${payload.tool_name}` : payload.hook_event_name;
  }
  return body.line_type || body.kind || record.source;
}

function onRecord(record) {
  const item = h('li', { dataset: { offset: record.offset, session: record.session || '' } },
    h('time', { datetime: record.time }, when(record.time)), ' ',
    record.session
      ? h('a', { href: `#/session/${encodeURIComponent(record.session)}?at=${record.offset}` },
        shortId(record.session))
      : '(no session)', ' ',
    h('span', { class: 'source' }, record.source), ' ',
    h('span', { class: 'event' }, eventName(record)));
  activity.prepend(item);
  while (activity.children.length > ACTIVITY_MAX) activity.lastElementChild.remove();
  document.getElementById('activity-empty').hidden = true;
  if (record.session) sessionChanged(record.session);
  // Coalesce bursts: one refresh of the visible view every two seconds at most.
  if (!refreshTimer) {
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      if (current && current.view === 'overview') refreshOverview(main, record);
    }, 2000);
  }
}

let sessionTimer = null;

/** A record of `session` arrived (or its row changed): refresh its page if it is shown. */
function sessionChanged(session) {
  if (!current || current.view !== 'session' || current.id !== session || sessionTimer) return;
  sessionTimer = setTimeout(() => {
    sessionTimer = null;
    if (current && current.view === 'session' && current.id === session) refreshSession(session);
  }, 1000);
}

let source = null;

function connect() {
  if (!window.EventSource) {
    liveState.textContent = 'live updates unavailable (no EventSource)';
    return;
  }
  source = new EventSource('/api/stream');
  source.onopen = () => {
    liveState.textContent = 'live';
    liveState.dataset.state = 'open';
  };
  source.onerror = () => {
    liveState.textContent = 'reconnecting…';
    liveState.dataset.state = 'error';
  };
  source.addEventListener('record', (event) => {
    try {
      onRecord(JSON.parse(event.data));
    } catch (e) {
      console.warn('bad stream event', e);
    }
  });
  // A session's row changed (its records were sealed and folded).
  source.addEventListener('session', (event) => {
    try {
      sessionChanged(JSON.parse(event.data).session);
    } catch (e) {
      console.warn('bad stream event', e);
    }
  });
}

// ---- health in the footer ----
async function health() {
  const el = document.getElementById('health');
  try {
    const hth = await api('/api/health');
    el.textContent = `next offset ${hth.next_offset}, unsealed ${hth.unsealed_records}, views at ${hth.views_checkpoint ?? '–'}`;
  } catch (e) {
    el.textContent = `health: ${e.message}`;
  }
}

// ---- not logged in: the API answered 401 ----
// The service asks for its token (off loopback, with --token, or where it cannot tell which
// user a connection comes from) and this browser has no session: say so once, with the way in.
function loginNeeded() {
  if (document.getElementById('login-needed')) return;
  const note = h('div', { id: 'login-needed', class: 'error', role: 'alert' },
    h('p', null, 'This ctrace service asks you to log in before it shows any records. ',
      h('a', { href: '/login' }, 'Log in'),
      ' with its token (the file serve.token in its store directory), or open the login link ',
      'ctrace serve printed at start.'));
  document.querySelector('header.top').after(note);
  if (source) source.close();
  liveState.textContent = 'not logged in';
  liveState.dataset.state = 'error';
}
window.addEventListener(UNAUTHORIZED_EVENT, loginNeeded);

window.addEventListener('hashchange', show);
show();
connect();
health();

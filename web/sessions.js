// The sessions table: pages from /api/sessions through its cursor, sorted and filtered by the
// API (header buttons choose `sort` and `order`; the overview's filters are the API's), so a
// sort orders every matching session, not the page on screen; refreshed live.

import { h, fill, api, query, errorBox, usd, tokens, duration, when, shortId, projectName,
  badge, untilParam } from './util.js';

const PAGE = 50;

// `sort`: the API's name of the order (`/api/sessions?sort=`).
const COLUMNS = [
  { key: 'session', label: 'Session', sort: 'session' },
  { key: 'project', label: 'Project', sort: 'project' },
  { key: 'first', label: 'Started', sort: 'first' },
  { key: 'duration', label: 'Duration', sort: 'duration', num: true },
  { key: 'models', label: 'Models', sort: 'models' },
  { key: 'status', label: 'Status', sort: 'status' },
  { key: 'tools', label: 'Tool calls', sort: 'tool_calls', num: true },
  { key: 'tokens', label: 'Tokens', sort: 'tokens', num: true },
  { key: 'cost', label: 'Cost', sort: 'cost', num: true },
];

/** Per table box: the cursor stack, the sort, the rows of the page. */
const tables = new WeakMap();

function cell(column, row) {
  switch (column.key) {
    case 'session':
      return h('td', {}, h('a', { href: `#/session/${encodeURIComponent(row.session)}`, title: row.session },
        h('code', {}, shortId(row.session))));
    case 'project': return h('td', { title: row.project || '' }, projectName(row.project));
    case 'first': return h('td', {}, h('time', { datetime: row.first || '' }, when(row.first)));
    case 'duration': return h('td', { class: 'num' }, duration(row.duration_ns));
    case 'models': return h('td', { class: 'models' }, (row.models || []).join(', ') || '–');
    case 'status': return h('td', {}, badge(row.status));
    case 'tools': return h('td', { class: 'num' }, String(row.tool_calls ?? 0));
    case 'tokens': return h('td', { class: 'num', dataset: { value: row.tokens } }, tokens(row.tokens));
    default: return h('td', { class: 'num', dataset: { value: row.cost } }, usd(row.cost));
  }
}

function draw(box) {
  const t = tables.get(box);
  const { rows } = t;
  const head = h('tr', {}, COLUMNS.map((c) => {
    const sorted = c.key === t.sort.key;
    const aria = sorted ? (t.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none';
    return h('th', { scope: 'col', 'aria-sort': aria, class: c.num ? 'num' : '' },
      h('button', {
        type: 'button',
        class: 'sort',
        onclick: async () => {
          t.sort = { key: c.key, dir: sorted && t.sort.dir === 'desc' ? 'asc' : 'desc' };
          t.cursors = [''];
          await page(box, 0);
          box.querySelector(`th button[data-key="${c.key}"]`)?.focus();
        },
        dataset: { key: c.key },
      }, c.label, h('span', { 'aria-hidden': 'true', class: 'arrow' }, sorted ? (t.sort.dir === 'asc' ? ' ▲' : ' ▼') : '')));
  }));
  const body = rows.length
    ? rows.map((r) => h('tr', { dataset: { session: r.session }, class: t.fresh.has(r.session) ? 'new' : '' },
      COLUMNS.map((c) => cell(c, r))))
    : [h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'empty' }, 'No sessions match.'))];
  const table = h('table', { class: 'sessions', id: 'sessions-table' },
    h('caption', {}, `Sessions, page ${t.cursors.length} (${rows.length} shown)`),
    h('thead', {}, head), h('tbody', {}, body));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Sessions pages' },
    h('button', { type: 'button', disabled: t.cursors.length <= 1, onclick: () => page(box, -1) }, '← Previous'),
    h('button', { type: 'button', disabled: !t.next, onclick: () => page(box, +1) }, 'Next →'));
  fill(t.slot, h('div', { class: 'table-scroll' }, table), pager);
}

async function fetchPage(box) {
  const t = tables.get(box);
  const f = t.filters;
  const cursor = t.cursors[t.cursors.length - 1];
  // Every filter is the server's, so each page holds PAGE matching rows.
  const answer = await api(`/api/sessions${query({
    since: f.since, until: untilParam(f.until), project: f.project, status: f.status,
    model: f.model, tool: f.tool, min_cost: f.min_cost, limit: PAGE, cursor,
    sort: (COLUMNS.find((c) => c.key === t.sort.key) || COLUMNS[2]).sort, order: t.sort.dir,
  })}`);
  t.rows = answer.sessions.map((s) => ({
    ...s,
    cost: t.cost.get(s.session)?.cost ?? 0,
    tokens: t.cost.get(s.session)?.tokens ?? 0,
  }));
  t.next = answer.next_cursor;
}

/** Shows the next (`step` 1), previous (-1) or first/current (0) page. */
async function page(box, step) {
  const t = tables.get(box);
  if (step > 0 && t.next) t.cursors.push(t.next);
  if (step < 0 && t.cursors.length > 1) t.cursors.pop();
  t.fresh = new Set();
  try {
    await fetchPage(box);
    draw(box);
  } catch (e) {
    fill(t.slot, errorBox('Loading sessions', e));
  }
}

/**
 * Renders (or, with `live`, refreshes) the table in `box`. A live refresh keeps the page and
 * the sort, and marks rows that were not there before.
 */
export async function renderSessionsTable(box, filters, cost, { live = false } = {}) {
  let t = tables.get(box);
  if (!t || !live) {
    const slot = h('div', { class: 'table-slot', 'aria-live': 'polite' });
    box.append(slot);
    t = { filters, cost, cursors: [''], sort: { key: 'first', dir: 'desc' }, rows: [], next: null, fresh: new Set(), slot };
    tables.set(box, t);
  }
  t.cost = cost;
  const before = new Set(t.rows.map((r) => r.session));
  try {
    await fetchPage(box);
  } catch (e) {
    fill(t.slot, errorBox('Loading sessions', e));
    return;
  }
  if (live) t.fresh = new Set(t.rows.map((r) => r.session).filter((s) => !before.has(s)));
  draw(box);
}

// The overview (#/): filters, totals, charts, and the sessions table. Filters live in the
// hash (#/?since=&until=&project=&model=&tool=&status=&min_cost=), so a view can be bookmarked.

import { h, fill, api, query, errorBox, usd, tokens, duration, projectName, badge, untilParam, later } from './util.js';
import { renderSessionsTable } from './sessions.js';

const STATUSES = ['ended', 'active', 'interrupted', 'recording', 'unfinished'];

let state = null;

function filtersFrom(params) {
  return {
    since: params.get('since') || '',
    until: params.get('until') || '',
    project: params.get('project') || '',
    model: params.get('model') || '',
    tool: params.get('tool') || '',
    status: params.get('status') || '',
    min_cost: params.get('min_cost') || '',
  };
}

/** Sessions the overview reads at most (the most recent first); `truncated` tells when more exist. */
const MAX_SESSIONS = 200000;

/** Every session in the date range (following the cursor), at most `MAX_SESSIONS`. */
async function allSessions(f) {
  const rows = [];
  let cursor = '';
  for (;;) {
    const answer = await api(`/api/sessions${query({ since: f.since, until: untilParam(f.until), limit: 10000, cursor })}`);
    rows.push(...answer.sessions);
    if (!answer.next_cursor) break;
    if (rows.length >= MAX_SESSIONS) {
      rows.truncated = true;
      break;
    }
    cursor = answer.next_cursor;
  }
  return rows;
}

/**
 * What the overview shows. The totals, the cost chart and the sessions table wait for the
 * sessions and the cost rows; the tool bars and the task counts (the slow queries on a big
 * store: cost by tool joins usage to spans, the task forest is every to-do) arrive later and
 * fill their panels when they do (`byTool` and `tasks` are promises).
 */
async function load(f) {
  const range = { since: f.since, until: untilParam(f.until) };
  const primary = Promise.all([
    allSessions(f),
    api(`/api/cost${query({ ...range, by: 'session', breakdown: 'true' })}`),
    api(`/api/cost${query({ ...range, by: 'day', breakdown: 'true' })}`),
  ]);
  // Asked for once the first numbers are in, so they do not compete with them for the server.
  const settled = primary.catch(() => null);
  const byTool = settled.then(() => api(`/api/cost${query({ ...range, by: 'tool' })}`))
    .catch((e) => ({ error: e }));
  const tasks = settled.then(() => api('/api/tasks')).catch((e) => ({ error: e }));
  const [sessions, costRows, byDay] = await primary;
  const costBySession = new Map();
  for (const row of costRows) {
    const c = costBySession.get(row.session) || { cost: 0, tokens: 0 };
    c.cost += row.cost_usd || 0;
    c.tokens += row.total_tokens || 0;
    costBySession.set(row.session, c);
  }
  return { f, sessions, costRows, byDay, byTool, tasks, costBySession };
}

/** Whether a filter other than the date range and the model picks sessions. */
function sessionFiltered(f) {
  return Boolean(f.project || f.status || f.tool || f.min_cost);
}

/** The sessions passing the filters, and the cost rows that belong to them. */
function apply(data) {
  const { f } = data;
  const minCost = parseFloat(f.min_cost);
  const sessionFilter = f.project || f.status || f.model || f.tool || !Number.isNaN(minCost);
  const ok = (s) => (!f.project || s.project === f.project)
    && (!f.status || s.status === f.status)
    && (!f.model || (s.models || []).includes(f.model))
    && (!f.tool || Object.hasOwn(s.tools || {}, f.tool))
    && (Number.isNaN(minCost) || (data.costBySession.get(s.session)?.cost || 0) >= minCost);
  const sessions = data.sessions.filter(ok);
  const keep = new Set(sessions.map((s) => s.session));
  const costRows = data.costRows.filter((r) => (!sessionFilter || keep.has(r.session))
    && (!f.model || r.model === f.model));
  return { f, sessions, costRows, keep, sessionFilter };
}

function card(label, value, id, raw) {
  return h('div', { class: 'card' },
    h('dt', {}, label),
    h('dd', { id, dataset: raw === undefined ? {} : { value: raw } }, value));
}

function totals(data, view) {
  const cost = view.costRows.reduce((sum, r) => sum + (r.cost_usd || 0), 0);
  const t = { input: 0, output: 0, cache_creation: 0, cache_read: 0 };
  for (const r of view.costRows) {
    t.input += r.input_tokens || 0;
    t.output += r.output_tokens || 0;
    t.cache_creation += r.cache_creation_tokens || 0;
    t.cache_read += r.cache_read_tokens || 0;
  }
  const durations = view.sessions.map((s) => s.duration_ns).filter((d) => typeof d === 'number');
  const avg = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : null;
  return h('dl', { class: 'cards', id: 'totals' },
    card('Sessions', data.sessions.truncated ? `${view.sessions.length}+` : String(view.sessions.length), 'total-sessions', view.sessions.length),
    card('Average duration', duration(avg), 'avg-duration', avg ?? ''),
    card('Total cost', usd(cost), 'total-cost', cost),
    card('Input tokens', tokens(t.input), 'tokens-input', t.input),
    card('Output tokens', tokens(t.output), 'tokens-output', t.output),
    card('Cache write tokens', tokens(t.cache_creation), 'tokens-cache-creation', t.cache_creation),
    card('Cache read tokens', tokens(t.cache_read), 'tokens-cache-read', t.cache_read),
    errorRateCard(view));
}

/** Failed tool calls over all tool calls of the sessions shown (the views count both). */
function errorRateCard(view) {
  let calls = 0;
  let errors = 0;
  for (const s of view.sessions) {
    calls += s.tool_calls || 0;
    errors += s.tool_errors || 0;
  }
  const rate = calls ? (100 * errors) / calls : null;
  const text = rate === null ? '–' : `${rate.toFixed(1)}% (${errors} of ${calls} calls)`;
  return h('div', { class: 'card' }, h('dt', {}, 'Tool error rate'),
    h('dd', { id: 'error-rate', dataset: { done: 'true', value: rate ?? '', errors, calls } }, text));
}

/** Tool calls and failures per tool, summed over the sessions shown. */
function toolTally(view) {
  const tally = new Map();
  for (const s of view.sessions) {
    for (const [tool, t] of Object.entries(s.tools || {})) {
      if (!tool) continue;
      const sum = tally.get(tool) || { tool, calls: 0, errors: 0 };
      sum.calls += t.calls || 0;
      sum.errors += t.errors || 0;
      tally.set(tool, sum);
    }
  }
  return [...tally.values()];
}

/** A list of labelled horizontal bars (the numbers are text; the bar is decoration). */
function bars(title, rows, label, value, format, id, note = () => '') {
  const top = rows.slice().sort((a, b) => value(b) - value(a)).slice(0, 10);
  const max = Math.max(...top.map(value), 0) || 1;
  return h('section', { class: 'panel', id, 'aria-labelledby': `${id}-h` },
    h('h3', { id: `${id}-h` }, title),
    top.length === 0 ? h('p', { class: 'empty' }, 'Nothing in this range.') :
      h('ol', { class: 'bars' }, top.map((r) => h('li', {},
        h('span', { class: 'bar-label', title: label(r) }, label(r)),
        h('span', { class: 'bar-track', 'aria-hidden': 'true' },
          h('span', { class: 'bar', style: `width:${(100 * value(r)) / max}%` })),
        h('span', { class: 'bar-value' }, format(value(r)), note(r) ? h('span', { class: 'bar-note' }, ` (${note(r)})`) : null)))));
}

const LATER_PANELS = ['tokens-by-tool', 'task-status'];

function taskCounts(tasks, view) {
  const counts = new Map();
  const walk = (node) => {
    if (node.kind !== 'session' && node.status) counts.set(node.status, (counts.get(node.status) || 0) + 1);
    (node.children || []).forEach(walk);
  };
  const box = h('section', { class: 'panel', id: 'task-status', 'aria-labelledby': 'task-status-h' },
    h('h3', { id: 'task-status-h' }, 'Tasks by status'));
  // To-dos belong to a session: those of the sessions shown (every filter, the date range too).
  // Beads issues belong to a project: those of the project filter's project, at any time.
  let projectIssues = false;
  for (const root of tasks.roots || []) {
    if (root.kind === 'session' && !view.keep.has(root.id)) continue;
    if (root.kind === 'project') {
      if (view.f.project && root.id !== view.f.project) continue;
      projectIssues = true;
    }
    walk(root);
  }
  if (counts.size === 0) box.append(h('p', { class: 'empty' }, 'No to-dos or issues recorded.'));
  else {
    box.append(h('ul', { class: 'counts' }, [...counts].sort((a, b) => b[1] - a[1])
      .map(([status, n]) => h('li', {}, badge(status), ' ', h('strong', {}, String(n))))));
  }
  if (projectIssues) box.append(h('p', { class: 'note' }, 'Beads issues are counted whatever their dates.'));
  return box;
}

/** The most called tools of the sessions shown, with how many calls failed. */
function topTools(view) {
  const title = 'Most used tools (calls)';
  const rows = toolTally(view);
  const box = bars(title, rows, (r) => r.tool, (r) => r.calls,
    String, 'top-tools', (r) => (r.errors ? `${r.errors} failed` : ''));
  box.dataset.done = 'true';
  return box;
}

/** Cost per day, one series per model, with uPlot; the same numbers as a table below. */
function costChart(data) {
  const f = data.f;
  const rows = data.byDay.filter((r) => !f.model || r.model === f.model);
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const models = [...new Set(rows.map((r) => r.model || '(all)'))].sort();
  const section = h('section', { class: 'panel wide', id: 'cost-chart', 'aria-labelledby': 'cost-chart-h' },
    h('h3', { id: 'cost-chart-h' }, 'Cost per day by model'),
    sessionFiltered(f) ? h('p', { class: 'note', id: 'cost-chart-note' },
      'Every session in the date range (and the model filter); the project, tool, status and cost filters apply to the totals and tables, not to this chart.') : null);
  if (days.length === 0) {
    section.append(h('p', { class: 'empty' }, 'No cost in this range.'));
    return section;
  }
  const value = new Map(rows.map((r) => [`${r.day}|${r.model || '(all)'}`, r.cost_usd]));
  const plot = h('div', { class: 'chart', role: 'img', 'aria-label': `Cost per day for ${models.length} models over ${days.length} days; the table below has the numbers` });
  section.append(plot);
  const table = h('table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), models.map((m) => h('th', { scope: 'col' }, m)))),
    h('tbody', {}, days.map((d) => h('tr', {}, h('th', { scope: 'row' }, d),
      models.map((m) => h('td', { class: 'num' }, usd(value.get(`${d}|${m}`) ?? 0)))))));
  section.append(h('details', {}, h('summary', {}, 'Cost per day as a table'), table));
  if (window.uPlot) {
    // One point per day that has cost, evenly spaced (days without cost are not drawn as
    // slopes between far-apart days).
    const xs = days.map((d, i) => i);
    const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
    const dashes = [[], [6, 3], [2, 2], [8, 3, 2, 3]];
    const series = [{ label: 'Day', value: (u, i) => (i == null ? '–' : days[i] ?? '') }, ...models.map((m, i) => ({
      label: m, stroke: palette[i % palette.length], dash: dashes[i % dashes.length], width: 2,
      points: { show: true, size: 7 }, value: (u, v) => (v == null ? '–' : usd(v)),
    }))];
    const ys = models.map((m) => days.map((d) => value.get(`${d}|${m}`) ?? null));
    requestAnimationFrame(() => {
      const width = Math.max(plot.clientWidth, 320);
      // eslint-disable-next-line no-new
      new window.uPlot({
        width,
        height: 260,
        series,
        scales: { x: { time: false, range: [-0.5, Math.max(days.length - 0.5, 0.5)] } },
        axes: [
          { splits: () => xs, values: (u, splits) => splits.map((i) => days[i] ?? '') },
          { values: (u, v) => v.map((x) => usd(x)), size: 70 },
        ],
      }, [xs, ...ys], plot);
    });
  } else {
    plot.append(h('p', { class: 'empty' }, 'Chart library not loaded; see the table.'));
  }
  return section;
}

function filtersForm(data) {
  const f = data.f;
  const projects = [...new Set(data.sessions.map((s) => s.project).filter(Boolean))].sort();
  const models = [...new Set(data.sessions.flatMap((s) => s.models || []))].sort();
  const tools = [...new Set(data.sessions.flatMap((s) => Object.keys(s.tools || {})))].filter(Boolean).sort();
  const select = (name, label, values, current, show = (v) => v) => h('label', {}, label,
    h('select', { name }, h('option', { value: '' }, 'all'),
      values.map((v) => h('option', { value: v, selected: v === current }, show(v)))));
  const form = h('form', { class: 'filters', id: 'filters', 'aria-label': 'Filters' },
    h('label', {}, 'From', h('input', { type: 'date', name: 'since', value: f.since })),
    h('label', {}, 'To', h('input', { type: 'date', name: 'until', value: f.until })),
    select('project', 'Project', projects, f.project, projectName),
    select('model', 'Model', models, f.model),
    select('tool', 'Tool', tools, f.tool),
    select('status', 'Status', STATUSES, f.status),
    h('label', {}, 'Cost at least ($)', h('input', { type: 'number', name: 'min_cost', min: 0, step: '0.01', value: f.min_cost, inputmode: 'decimal' })),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', onclick: () => { location.hash = '#/'; } }, 'Clear'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form));
    location.hash = `#/${query(values)}`;
  });
  return form;
}

function body(data) {
  const view = apply(data);
  const toolRows = data.byTool.then((rows) => (rows.error ? rows : rows.filter((r) => r.tool !== '(no tool)')));
  const projectOf = new Map(data.sessions.map((s) => [s.session, s.project]));
  const projectRows = new Map();
  for (const r of view.costRows) {
    const project = projectOf.get(r.session) || '(unknown)';
    projectRows.set(project, (projectRows.get(project) || 0) + r.cost_usd);
  }
  const modelRows = new Map();
  for (const r of view.costRows) modelRows.set(r.model || '(unknown)', (modelRows.get(r.model || '(unknown)') || 0) + r.cost_usd);
  const empty = data.sessions.length === 0;
  const content = h('div', { id: 'overview-body' },
    data.sessions.truncated ? h('p', { class: 'note', id: 'truncated-note' },
      `Only the ${MAX_SESSIONS.toLocaleString('en-US')} most recent sessions of the range are counted here; narrow the date range to see the rest.`) : null,
    empty ? h('p', { class: 'empty', id: 'empty-store' },
      'No sessions recorded yet. Hooks sent to this service (or recorded by `ctrace hook`) show up here live.') : null,
    totals(data, view),
    h('div', { class: 'grid' },
      costChart(data),
      bars('Cost by model', [...modelRows].map(([k, v]) => ({ k, v })), (r) => r.k, (r) => r.v, usd, 'cost-by-model'),
      bars('Cost by project', [...projectRows].map(([k, v]) => ({ k, v })), (r) => projectName(r.k), (r) => r.v, usd, 'cost-by-project'),
      later('tokens-by-tool', 'Tokens by tool (date range only)', toolRows,
        (rows) => bars('Tokens by tool (date range only)', rows, (r) => r.tool, (r) => r.total_tokens, tokens, 'tokens-by-tool')),
      topTools(view),
      later('task-status', 'Tasks by status', data.tasks, (tasks) => taskCounts(tasks, view))));
  return { content, view };
}

/** Renders the overview into `main` from the route's parameters. */
export async function renderOverview(main, params) {
  const f = filtersFrom(params);
  fill(main, h('h2', {}, 'Overview'), h('p', { class: 'loading' }, 'Loading…'));
  let data;
  try {
    data = await load(f);
  } catch (e) {
    fill(main, h('h2', {}, 'Overview'), errorBox('Loading the overview', e));
    return;
  }
  state = { data, params };
  const { content } = body(data);
  const tableBox = h('section', { id: 'sessions', 'aria-labelledby': 'sessions-h' },
    h('h2', { id: 'sessions-h' }, 'Sessions'));
  fill(main, h('h2', {}, 'Overview'), filtersForm(data), content, tableBox);
  await renderSessionsTable(tableBox, f, data.costBySession);
}

/** Re-reads the totals and the first page of sessions after live records arrived. */
export async function refreshOverview(main) {
  if (!state) return;
  const box = main.querySelector('#overview-body');
  const tableBox = main.querySelector('#sessions');
  if (!box || !tableBox) return;
  try {
    const data = await load(state.data.f);
    const { content } = body(data);
    // The previous panels stay on screen until the new numbers arrive (no "Loading…" flash).
    for (const id of LATER_PANELS) {
      const old = box.querySelector(`#${id}`);
      const placeholder = content.querySelector(`#${id}`);
      if (old && placeholder && !placeholder.dataset.done) placeholder.replaceWith(old);
    }
    box.replaceWith(content);
    state.data = data;
    await renderSessionsTable(tableBox, data.f, data.costBySession, { live: true });
  } catch (e) {
    box.prepend(errorBox('Refreshing', e));
  }
}

// One session (#/session/<id>?at=<offset>): summary, waterfall timeline (with Claude Code's
// API errors and retries marked when it sent telemetry), the Telemetry panel (only with
// telemetry), the cost per turn, subagent and tool, the task tree (HTML and Mermaid), the conversation (records, paginated), and the
// terminal recording.

import { h, fill, api, query, errorBox, usd, tokens, duration, when, projectName, badge, loadScript, later } from './util.js';
import { telemetryPanel, timelineMarkers, hasTelemetry } from './telemetry.js';
import { treeCost, toolCost } from './cost.js';

const TIMELINE_PAGE = 300;
const RECORDS_PAGE = 200;
const TREE_OPEN_DEPTH = 2;
const TREE_CHILDREN_PAGE = 200;
const MERMAID_MAX_CHARS = 200000;
const TEXT_MAX = 4000;

function section(id, title, ...children) {
  return h('section', { id, class: 'panel wide', 'aria-labelledby': `${id}-h` },
    h('h3', { id: `${id}-h` }, title), ...children);
}

function summary(row, costRow, tree) {
  return h('dl', { class: 'cards', id: 'session-summary' },
    h('div', { class: 'card' }, h('dt', {}, 'Project'), h('dd', { title: row.project || '' }, projectName(row.project))),
    h('div', { class: 'card' }, h('dt', {}, 'Status'), h('dd', {}, badge(row.status))),
    h('div', { class: 'card' }, h('dt', {}, 'Started'), h('dd', {}, when(row.first))),
    h('div', { class: 'card' }, h('dt', {}, 'Duration'), h('dd', {}, duration(row.duration_ns))),
    h('div', { class: 'card' }, h('dt', {}, 'Models'), h('dd', {}, (row.models || []).join(', ') || '–')),
    h('div', { class: 'card' }, h('dt', {}, 'Tool calls'), h('dd', {}, String(row.tool_calls ?? 0))),
    h('div', { class: 'card' }, h('dt', {}, 'Cost'), h('dd', { id: 'session-cost' }, usd(tree?.cost_usd ?? costRow?.cost ?? 0))),
    h('div', { class: 'card' }, h('dt', {}, 'Records'),
      h('dd', {}, Object.entries(row.records || {}).map(([k, v]) => `${v} ${k}`).join(', ') || '0')));
}

// ---- waterfall ----

/** The local time of day of an RFC 3339 time. */
function clock(time) {
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? String(time) : date.toLocaleTimeString(undefined, { hour12: false });
}

/**
 * An API error or a failed retry of Claude Code's telemetry on the timeline: a tick, not a bar
 * (the timeline's own item of the `otlp` record, drawn as a marker).
 */
function markerRow(item, start, span) {
  const left = span > 0 ? Math.min((100 * (item.ts - start)) / span, 99.5) : 0;
  const retry = item.event === 'api_retry';
  return h('li', { class: 'wf-marker-item' }, h('div', { class: `wf-row wf-marker ev-${item.event} is-error`, dataset: { offset: item.offset, marker: item.event } },
    h('span', { class: 'wf-time' }, h('time', { datetime: item.time, title: when(item.time) }, clock(item.time))),
    h('span', { class: 'wf-label', title: item.summary }, item.summary),
    h('span', { class: 'wf-status' }, badge(retry ? 'retry' : 'error')),
    h('span', { class: 'wf-dur num' }, item.duration_ms != null ? duration(item.duration_ms * 1e6) : ''),
    h('span', { class: 'wf-track', 'aria-hidden': 'true' },
      h('span', { class: 'wf-tick', style: `left:${left}%` }))));
}

/**
 * `items` with the API errors of `markers` drawn as markers: the item of a marker's record
 * (same offset) becomes the marker; a marker whose record is not among the items is sorted in
 * by time.
 */
function withMarkers(items, markers) {
  if (!markers.length) return items;
  const byOffset = new Map(markers.map((m) => [String(m.offset), m]));
  const marked = items.map((item) => {
    const marker = byOffset.get(String(item.offset));
    if (!marker) return item;
    byOffset.delete(String(item.offset));
    return { ...marker, ts: item.ts, time: item.time };
  });
  const rest = [...byOffset.values()];
  const out = [];
  let m = 0;
  for (const item of marked) {
    while (m < rest.length && rest[m].ts < item.ts) out.push(rest[m++]);
    out.push(item);
  }
  return out.concat(rest.slice(m));
}

function waterfallRow(item, start, span, depth) {
  if (item.marker) return markerRow(item, start, span);
  const left = span > 0 ? (100 * (item.ts - start)) / span : 0;
  const width = span > 0 ? Math.max((100 * (item.duration_ns || 0)) / span, 0.2) : 0.2;
  const status = item.status || '';
  const label = item.tool ? item.summary || item.tool : `${item.event}: ${item.summary || ''}`;
  const line = h('div', { class: `wf-row ev-${(item.event || '').replace(/[^a-z_]/gi, '')} ${status === 'error' ? 'is-error' : ''}`, dataset: { offset: item.offset } },
    h('span', { class: 'wf-time' }, h('time', { datetime: item.time, title: when(item.time) }, clock(item.time))),
    h('span', { class: 'wf-label', title: item.summary || '' },
      item.agent_id ? h('span', { class: 'agent' }, `[${item.agent_id}] `) : null, label),
    h('span', { class: 'wf-status' }, status ? badge(status) : ''),
    h('span', { class: 'wf-dur num' }, item.duration_ns != null ? duration(item.duration_ns) : ''),
    h('span', { class: 'wf-track', 'aria-hidden': 'true' },
      h('span', { class: 'wf-bar', style: `left:${Math.min(left, 99.8)}%;width:${Math.min(width, 100 - Math.min(left, 99.8))}%` })));
  if (!item.children || item.children.length === 0) return h('li', {}, line);
  const errors = item.children.filter((c) => c.status === 'error').length;
  return h('li', {}, h('details', {},
    h('summary', {}, line, h('span', { class: 'wf-sub' },
      `subagent: ${item.children.length} items${errors ? `, ${errors} errors` : ''}`)),
    h('ol', { class: 'waterfall nested' }, item.children.map((c) => waterfallRow(c, start, span, depth + 1)))));
}

function waterfall(timeline, row, { shownAtLeast = 0, open = new Set(), markers = [] } = {}) {
  const list = h('ol', { class: 'waterfall', id: 'waterfall' });
  const items = withMarkers(timeline, markers);
  const start = row.first_ns || (items[0] && items[0].ts) || 0;
  const end = Math.max(row.last_ns || 0, ...items.map((i) => (i.ts || 0) + (i.duration_ns || 0)));
  const span = Math.max(end - start, 1);
  let shown = 0;
  const more = h('button', { type: 'button', class: 'more' });
  const step = () => {
    items.slice(shown, shown + TIMELINE_PAGE).forEach((i) => list.append(waterfallRow(i, start, span, 0)));
    shown = Math.min(items.length, shown + TIMELINE_PAGE);
    more.hidden = shown >= items.length;
    more.textContent = `Show ${Math.min(TIMELINE_PAGE, items.length - shown)} more (${items.length - shown} left)`;
  };
  more.addEventListener('click', step);
  do step(); while (shown < Math.min(shownAtLeast, items.length));
  // Subagents the reader had opened stay open across a live refresh.
  for (const details of list.querySelectorAll('details')) {
    if (open.has(details.querySelector('.wf-row')?.dataset.offset)) details.open = true;
  }
  const errors = timeline.filter((i) => i.status === 'error').length;
  const retries = markers.filter((m) => m.event === 'api_retry').length;
  const api = markers.length ? ` ${markers.length} API errors from telemetry (${retries} failed retries) are marked.` : '';
  return [h('p', {}, `${timeline.length} items, ${errors} failed tool calls. Subagents are nested under the call that started them (collapsed).${api}`),
    items.length ? list : h('p', { class: 'empty' }, 'No timeline items.'), more];
}

/**
 * Draws the page's timeline again from `page.items` and the markers of `page.telemetry`,
 * keeping the subagents the reader opened open and as many items shown.
 */
function drawTimeline(page) {
  const box = page.timelineBox;
  if (!box.isConnected || !page.items) return;
  const open = new Set([...box.querySelectorAll('details[open] .wf-row')].map((r) => r.dataset.offset));
  const shownAtLeast = box.querySelectorAll('#waterfall > li').length;
  fill(box, box.firstChild, ...waterfall(page.items, page.row, { shownAtLeast, open, markers: timelineMarkers(page.telemetry) }));
}

/**
 * Takes `data` (an answer of /telemetry) as the page's telemetry: the jump link to the panel
 * shows when there is telemetry, and the timeline is drawn again when its markers change
 * (with `redraw`).
 */
function showTelemetry(page, data, { redraw = true } = {}) {
  const before = page.telemetry;
  page.telemetry = data;
  const link = document.getElementById('jump-telemetry');
  if (link) link.hidden = !hasTelemetry(data);
  if (redraw && (timelineMarkers(before).length || timelineMarkers(data).length)) drawTimeline(page);
}

// ---- tree ----

function treeNode(node, depth) {
  const tok = node.tokens ? node.tokens.input + node.tokens.output + node.tokens.cache_creation + node.tokens.cache_read : 0;
  const dur = node.end_ns && node.start_ns ? duration(node.end_ns - node.start_ns) : '–';
  const label = h('span', { class: 'node' },
    h('span', { class: 'kind' }, node.kind), ' ',
    h('span', { class: 'name', title: node.name }, node.name.length > 140 ? `${node.name.slice(0, 140)}…` : node.name), ' ',
    badge(node.status), ' ',
    h('span', { class: 'meta' }, [dur, node.cost_usd ? usd(node.cost_usd) : null, tok ? `${tokens(tok)} tokens` : null].filter(Boolean).join(' · ')),
    node.error ? h('span', { class: 'err' }, ` error: ${node.error}`) : null);
  const children = node.children || [];
  if (children.length === 0) return h('li', {}, label);
  const list = h('ul', {});
  let shown = 0;
  const more = h('button', { type: 'button', class: 'more' });
  const step = () => {
    children.slice(shown, shown + TREE_CHILDREN_PAGE).forEach((c) => list.append(treeNode(c, depth + 1)));
    shown = Math.min(children.length, shown + TREE_CHILDREN_PAGE);
    more.hidden = shown >= children.length;
    more.textContent = `Show more (${children.length - shown} left)`;
  };
  more.addEventListener('click', step);
  // Children are built when first opened: large trees stay cheap.
  const details = h('details', { open: depth < TREE_OPEN_DEPTH },
    h('summary', {}, label, h('span', { class: 'count' }, ` (${children.length})`)), list, more);
  if (details.open) step();
  else details.addEventListener('toggle', () => { if (details.open && shown === 0) step(); });
  return h('li', {}, details);
}

async function mermaidInto(box, id) {
  try {
    await loadScript('/assets/vendor/mermaid/mermaid.min.js');
  } catch (e) {
    // The HTML tree above has the same content.
  }
  if (!window.mermaid) {
    fill(box, h('p', { class: 'empty' }, 'Mermaid is not loaded.'));
    return;
  }
  let text;
  try {
    text = await api(`/api/sessions/${encodeURIComponent(id)}/tree${query({ format: 'mermaid' })}`, { text: true });
  } catch (e) {
    fill(box, errorBox('Loading the diagram', e));
    return;
  }
  const draw = async () => {
    fill(box, h('p', { class: 'loading' }, 'Rendering…'));
    try {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', maxTextSize: MERMAID_MAX_CHARS * 5, maxEdges: 100000, flowchart: { useMaxWidth: false } });
      const { svg } = await window.mermaid.render(`mermaid-${Date.now()}`, text);
      fill(box);
      box.innerHTML = svg; // mermaid's output, sanitized by mermaid (securityLevel strict)
      // The root is at the top middle of a top-down chart.
      box.scrollLeft = Math.max(0, (box.scrollWidth - box.clientWidth) / 2);
    } catch (e) {
      fill(box, errorBox('Rendering the diagram', e));
    }
  };
  if (text.length > MERMAID_MAX_CHARS) {
    fill(box, h('p', {}, `The diagram has ${text.length} characters; rendering it may take a while.`),
      h('button', { type: 'button', onclick: draw }, 'Render the diagram'));
  } else {
    await draw();
  }
}

// ---- conversation ----

function blockText(block) {
  if (typeof block === 'string') return block;
  if (!block || typeof block !== 'object') return '';
  switch (block.type) {
    case 'text': return block.text || '';
    case 'thinking': return `(thinking) ${block.thinking || ''}`;
    case 'tool_use': return `→ ${block.name} ${JSON.stringify(block.input)}`;
    case 'tool_result': {
      const c = Array.isArray(block.content) ? block.content.map(blockText).join('\n') : blockText(block.content);
      return `${block.is_error ? '✗ error' : '←'} ${c}`;
    }
    default: return JSON.stringify(block);
  }
}

/** An OTLP attribute's value as text. */
function attributeText(value) {
  if (!value || typeof value !== 'object') return '';
  const [kind, v] = Object.entries(value)[0] || [];
  return kind === 'arrayValue' || kind === 'kvlistValue' ? JSON.stringify(v) : String(v ?? '');
}

/** An `otlp` record of a log event: its name and attributes as `key=value`, one a line. */
function otlpText(body) {
  const log = body.otlp?.resourceLogs?.[0]?.scopeLogs?.[0]?.logRecords?.[0];
  if (!log) return null;
  const attributes = (log.attributes || []).map((a) => `${a.key}=${attributeText(a.value)}`);
  return { role: `otlp ${body.name || body.signal || ''}`.trim(), text: attributes.join('\n') };
}

/** A tool's response in a PostToolUse payload as text (Bash: stdout, then stderr). */
function toolResponseText(response) {
  if (response === undefined || response === null) return '';
  if (typeof response === 'string') return response;
  if (typeof response === 'object' && ('stdout' in response || 'stderr' in response)) {
    return [response.stdout, response.stderr].filter((t) => typeof t === 'string' && t).join('\n');
  }
  return JSON.stringify(response, null, 1);
}

/** What a hook payload says: the prompt, the tool call with its input and response or error, the message. */
function hookText(payload) {
  const lines = [];
  if (payload.prompt) lines.push(String(payload.prompt));
  if (payload.tool_name) lines.push(`→ ${payload.tool_name} ${JSON.stringify(payload.tool_input ?? '')}`);
  const response = toolResponseText(payload.tool_response);
  if (response) lines.push(`← ${response}`);
  if (payload.error) lines.push(`✗ error ${typeof payload.error === 'string' ? payload.error : JSON.stringify(payload.error)}`);
  if (payload.message) lines.push(String(payload.message));
  if (lines.length === 0 && payload.source) lines.push(`(${payload.source})`);
  return lines.join('\n');
}

function recordText(record) {
  const body = record.body || {};
  if (record.source === 'otlp') {
    const text = otlpText(body);
    if (text) return text;
  }
  const payload = body.payload || {};
  const message = payload.message;
  if (message && message.content !== undefined) {
    const content = Array.isArray(message.content) ? message.content.map(blockText).join('\n') : blockText(message.content);
    return { role: message.role || body.line_type || record.source, text: content };
  }
  if (payload.hook_event_name) return { role: `hook ${payload.hook_event_name}`, text: hookText(payload) };
  return { role: body.line_type || body.kind || record.source, text: JSON.stringify(body.payload ?? body) };
}

function recordItem(record, at) {
  const { role, text } = recordText(record);
  const long = text.length > TEXT_MAX;
  const pre = h('pre', {}, long ? `${text.slice(0, TEXT_MAX)}…` : text);
  return h('li', { id: `record-${record.offset}`, class: `rec ${String(record.offset) === at ? 'at' : ''}`, dataset: { offset: record.offset }, tabindex: '-1' },
    h('div', { class: 'rec-head' }, h('span', { class: 'role' }, role), ' ',
      h('time', { datetime: record.time }, when(record.time)), ' ', h('span', { class: 'meta' }, `#${record.offset} ${record.source}`)),
    pre,
    long ? h('button', { type: 'button', class: 'more', onclick: (e) => { pre.textContent = text; e.target.remove(); } }, `Show all ${text.length} characters`) : null);
}

async function conversation(box, id, at, handle = {}) {
  const list = h('ol', { class: 'records', id: 'records' });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Load more records');
  const earlier = h('button', { type: 'button', class: 'more', hidden: true }, 'Start from the beginning');
  fill(box, earlier, list, more);
  let after = at ? Math.max(Number(at) - 1, -1) : null;
  let last = null;
  const load = async () => {
    more.disabled = true;
    try {
      const answer = await api(`/api/sessions/${encodeURIComponent(id)}/records${query({ after: after === null || after < 0 ? '' : after, limit: RECORDS_PAGE })}`);
      if (answer.records.length) list.querySelector(':scope > li.empty')?.remove();
      answer.records.forEach((r) => {
        list.append(recordItem(r, at));
        last = r.offset;
      });
      after = answer.next_after;
      more.hidden = answer.next_after === null || answer.next_after === undefined;
      if (list.children.length === 0) list.append(h('li', { class: 'empty' }, 'No records.'));
    } catch (e) {
      box.append(errorBox('Loading records', e));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', load);
  // Live: records that arrived after the last one shown, once the list has reached the end
  // (a list still paging shows them when "Load more" gets there).
  handle.appendNew = async () => {
    if (!more.hidden || more.disabled) return;
    after = last;
    await load();
  };
  if (at) {
    earlier.hidden = false;
    earlier.addEventListener('click', () => { location.hash = `#/session/${encodeURIComponent(id)}`; });
  }
  await load();
  if (at) {
    const target = document.getElementById(`record-${at}`);
    if (target) {
      target.scrollIntoView({ block: 'center' });
      target.focus({ preventScroll: true });
    }
  }
}

// ---- terminal ----

async function terminal(box, id) {
  let cast;
  try {
    const response = await fetch(`/api/sessions/${encodeURIComponent(id)}/cast`);
    if (response.status === 404) {
      fill(box, h('p', { class: 'empty', id: 'no-recording' }, 'No terminal recording for this session.'));
      return;
    }
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    cast = await response.text();
  } catch (e) {
    fill(box, errorBox('Loading the terminal recording', e));
    return;
  }
  try {
    await loadScript('/assets/vendor/asciinema-player/asciinema-player.min.js');
  } catch (e) {
    // Reported just below.
  }
  if (!window.AsciinemaPlayer) {
    fill(box, h('p', { class: 'empty' }, 'The terminal player is not loaded.'));
    return;
  }
  const el = h('div', { id: 'player' });
  fill(box, el);
  try {
    window.AsciinemaPlayer.create({ data: cast }, el, { fit: 'width', idleTimeLimit: 2 });
  } catch (e) {
    fill(box, errorBox('Playing the terminal recording', e));
  }
}

/** Renders session `id` into `main`; `params.at` opens the conversation at that offset. */
export async function renderSession(main, id, params) {
  const at = params.get('at');
  const enc = encodeURIComponent(id);
  fill(main, h('p', { class: 'loading' }, 'Loading session…'));
  let row;
  try {
    row = await api(`/api/sessions/${enc}`);
  } catch (e) {
    fill(main, h('p', {}, h('a', { href: '#/' }, '← Overview')), errorBox(`Loading session ${id}`, e));
    return;
  }
  const sid = row.session || id;
  const timelineBox = section('timeline', 'Timeline', h('p', { class: 'loading' }, 'Loading…'));
  const treeHtml = h('div', { id: 'tree-html', class: 'tree' }, h('p', { class: 'loading' }, 'Loading…'));
  const mermaidBox = h('div', { id: 'mermaid', class: 'mermaid-box' }, h('p', { class: 'loading' }, 'Loading…'));
  const treeBox = section('tree', 'Task tree', treeHtml,
    h('h4', {}, 'Diagram'), mermaidBox);
  const recordsBox = h('div', {});
  const convBox = section('conversation', 'Conversation', recordsBox);
  const termBox = h('div', { id: 'terminal-box' }, h('p', { class: 'loading' }, 'Loading…'));
  const castBox = section('terminal', 'Terminal recording', termBox);
  const costTree = h('div', { id: 'cost-tree' }, h('p', { class: 'loading' }, 'Loading…'));
  const costTools = h('div', { id: 'cost-tools-box' }, h('p', { class: 'loading' }, 'Loading…'));
  const costBox = section('cost', 'Cost', costTree, h('h4', {}, 'By tool'), costTools);
  const summaryBox = h('div', {});
  const page = { id: sid, row, items: null, telemetry: null, timelineBox, costTree, costTools };
  // Asked for once the timeline and the tree are in, so it does not compete with them.
  let primaryDone;
  const primarySettled = new Promise((resolve) => { primaryDone = resolve; });
  const telemetry = primarySettled.then(() => api(`/api/sessions/${enc}/telemetry`)).catch((e) => ({ error: e }));
  const telemetryBox = later('telemetry', 'Telemetry', telemetry, (data) => {
    showTelemetry(page, data);
    return telemetryPanel(data);
  }, { wide: true, quiet: true });
  const byTool = primarySettled.then(() => fillToolCost(page));
  fill(main,
    h('p', {}, h('a', { href: '#/' }, '← Overview')),
    h('h2', {}, 'Session ', h('code', {}, sid)),
    summaryBox,
    h('nav', { class: 'jump', 'aria-label': 'Sections' },
      ['timeline', 'telemetry', 'cost', 'tree', 'conversation', 'terminal'].map((s) => h('a', { href: `#/session/${enc}${query({ at })}`, id: `jump-${s}`, hidden: s === 'telemetry', onclick: (e) => { e.preventDefault(); document.getElementById(s).scrollIntoView(); document.getElementById(`${s}-h`)?.focus?.(); } }, s))),
    timelineBox, telemetryBox, costBox, treeBox, convBox, castBox);
  const [timeline, tree] = await Promise.all([
    api(`/api/sessions/${enc}/timeline`).catch((e) => ({ error: e })),
    api(`/api/sessions/${enc}/tree`).catch((e) => ({ error: e })),
  ]);
  fill(summaryBox, summary(row, null, tree.error ? null : tree));
  if (timeline.error) fill(timelineBox, timelineBox.firstChild, errorBox('Loading the timeline', timeline.error));
  else {
    page.items = timeline;
    fill(timelineBox, timelineBox.firstChild, ...waterfall(timeline, row, { markers: timelineMarkers(page.telemetry) }));
  }
  primaryDone();
  if (tree.error) {
    fill(treeHtml, errorBox('Loading the tree', tree.error));
    fill(costTree, errorBox('Loading the tree', tree.error));
  } else {
    fill(treeHtml, h('ul', { class: 'tree-root' }, treeNode(tree, 0)));
    page.costTree = treeCost(sid, tree);
    costTree.replaceWith(page.costTree);
  }
  const conv = {};
  live = Object.assign(page, { summaryBox, treeHtml, conv });
  await Promise.all([mermaidInto(mermaidBox, sid), conversation(recordsBox, sid, at, conv), terminal(termBox, sid), telemetry, byTool]);
}

/** Reads the session's cost by tool into the Cost panel. */
async function fillToolCost(page) {
  let rows;
  try {
    rows = await api(`/api/cost${query({ by: 'tool', session: page.id })}`);
  } catch (e) {
    fill(page.costTools, errorBox('Loading the cost by tool', e));
    return;
  }
  fill(page.costTools, toolCost(rows));
  page.costTools.dataset.done = 'true';
}

/** The session page on screen, for live refreshes. */
let live = null;

/**
 * Brings the session page up to date after live records of session `id` arrived: its row,
 * timeline, HTML tree and telemetry are read again (the subagents the reader opened stay open,
 * and as many timeline items stay shown; the Telemetry panel appears once the session has
 * telemetry), and new records are appended to the conversation. The Mermaid diagram and the
 * terminal recording are left as they are (reload the page for them).
 */
export async function refreshSession(id) {
  if (!live || live.id !== id || !live.timelineBox.isConnected) return;
  const page = live;
  const { summaryBox, timelineBox, treeHtml, conv } = page;
  const enc = encodeURIComponent(id);
  let row;
  let timeline;
  let tree;
  let telemetry;
  try {
    [row, timeline, tree, telemetry] = await Promise.all([
      api(`/api/sessions/${enc}`),
      api(`/api/sessions/${enc}/timeline`),
      api(`/api/sessions/${enc}/tree`),
      // A failure here keeps the panel as it is.
      api(`/api/sessions/${enc}/telemetry`).catch(() => null),
    ]);
  } catch (e) {
    return; // The next live event tries again; the page keeps what it shows.
  }
  if (!timelineBox.isConnected) return;
  fill(summaryBox, summary(row, null, tree));
  page.row = row;
  page.items = timeline;
  if (telemetry) {
    showTelemetry(page, telemetry, { redraw: false });
    const panel = document.getElementById('telemetry');
    const next = telemetryPanel(telemetry);
    next.dataset.done = 'true';
    next.dataset.refreshed = String(Number(panel?.dataset.refreshed || 0) + 1);
    if (panel) panel.replaceWith(next);
  }
  drawTimeline(page);
  timelineBox.dataset.refreshed = String(Number(timelineBox.dataset.refreshed || 0) + 1);
  fill(treeHtml, h('ul', { class: 'tree-root' }, treeNode(tree, 0)));
  if (page.costTree.isConnected) {
    const next = treeCost(id, tree);
    page.costTree.replaceWith(next);
    page.costTree = next;
  }
  await fillToolCost(page);
  if (conv.appendNew) await conv.appendNew();
}

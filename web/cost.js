// The session page's Cost panel: what each turn, subagent and tool cost. Turns and subagents
// are the task tree's nodes (`/api/sessions/{id}/tree`: a node's cost rolls up its children, so
// the turns add up to the session); tools are `/api/cost?by=tool&session=` (each API response
// counted once, under the tool it called, as `ctrace cost --by tool`).

import { h, usd, tokens, duration, query } from './util.js';

const TOP = 10;

function nodeTokens(node) {
  const t = node.tokens;
  return t ? t.input + t.output + t.cache_creation + t.cache_read : 0;
}

function nodeDuration(node) {
  return node.end_ns && node.start_ns ? duration(node.end_ns - node.start_ns) : '–';
}

/** Every node of `kind` under `root`, with the turn it is in. */
function nodesOf(root, kind) {
  const out = [];
  const walk = (node, turn) => {
    const here = node.kind === 'turn' ? node : turn;
    if (node.kind === kind) out.push({ node, turn: here === node ? null : here });
    (node.children || []).forEach((c) => walk(c, here));
  };
  walk(root, null);
  return out;
}

/** A link that opens the conversation at the node's first record. */
function openAt(session, node, text) {
  if (node.offset === null || node.offset === undefined) return text;
  return h('a', { href: `#/session/${encodeURIComponent(session)}${query({ at: node.offset })}` }, text);
}

function short(text, max = 100) {
  const s = String(text || '');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * A table of the `TOP` costliest `entries` (of `all`), with a footer that sums all of them, so
 * the footer equals the session's cost when the entries cover it.
 */
function nodeTable(id, caption, session, entries, columns) {
  const sorted = entries.slice().sort((a, b) => (b.node.cost_usd || 0) - (a.node.cost_usd || 0));
  const total = entries.reduce((sum, e) => sum + (e.node.cost_usd || 0), 0);
  const unpriced = entries.some((e) => e.node.cost_usd === null || e.node.cost_usd === undefined);
  const head = ['Name', ...columns.map((c) => c.label), 'Duration', 'Tokens', 'Cost'];
  return h('div', { class: 'table-scroll' }, h('table', { id, dataset: { total, count: entries.length } },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((t, i) => h('th', { scope: 'col', class: i >= head.length - 3 ? 'num' : '' }, t)))),
    h('tbody', {}, sorted.slice(0, TOP).map((e) => h('tr', { dataset: { id: e.node.id, value: e.node.cost_usd ?? '' } },
      h('th', { scope: 'row', title: e.node.name }, openAt(session, e.node, short(e.node.name))),
      columns.map((c) => h('td', {}, c.value(e))),
      h('td', { class: 'num' }, nodeDuration(e.node)),
      h('td', { class: 'num' }, tokens(nodeTokens(e.node))),
      h('td', { class: 'num' }, usd(e.node.cost_usd))))),
    h('tfoot', {}, h('tr', {},
      h('th', { scope: 'row', colspan: head.length - 1 },
        sorted.length > TOP ? `All ${sorted.length} (the ${TOP} costliest shown)` : `All ${sorted.length}`),
      h('td', { class: 'num' }, `${usd(total)}${unpriced ? ' + unpriced' : ''}`)))));
}

/** Turns and subagents from the session's tree. */
export function treeCost(session, tree) {
  const turns = nodesOf(tree, 'turn');
  const subagents = nodesOf(tree, 'subagent');
  return h('div', { id: 'cost-tree' },
    turns.length === 0 ? h('p', { class: 'empty' }, 'No turns recorded.')
      : nodeTable('cost-turns', 'Turns, costliest first (a turn includes its tool calls and subagents).', session, turns,
        [{ label: 'Status', value: (e) => e.node.status }]),
    subagents.length === 0 ? h('p', { class: 'empty' }, 'No subagents in this session.')
      : nodeTable('cost-subagents', 'Subagents, costliest first.', session, subagents,
        [{ label: 'Turn', value: (e) => short(e.turn?.name, 60) || '–' }, { label: 'Status', value: (e) => e.node.status }]));
}

/** The session's cost by tool (`/api/cost?by=tool&session=` rows). */
export function toolCost(rows) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty', id: 'cost-tools' }, 'No API responses recorded.');
  const sorted = rows.slice().sort((a, b) => (b.cost_usd || 0) - (a.cost_usd || 0));
  const total = rows.reduce((sum, r) => sum + (r.cost_usd || 0), 0);
  return h('div', { class: 'table-scroll' }, h('table', { id: 'cost-tools', dataset: { total, count: rows.length } },
    h('caption', {}, 'By tool: each API response under the tool it called ("(no tool)": responses that called none).'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tool'),
      ['Responses', 'Tokens', 'Cost'].map((t) => h('th', { scope: 'col', class: 'num' }, t)))),
    h('tbody', {}, sorted.map((r) => h('tr', { dataset: { tool: r.tool, value: r.cost_usd ?? '' } },
      h('th', { scope: 'row' }, r.tool),
      h('td', { class: 'num' }, String(r.responses)),
      h('td', { class: 'num' }, tokens(r.total_tokens)),
      h('td', { class: 'num' }, usd(r.cost_usd))))),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, 'Total'),
      h('td', { class: 'num' }, usd(total))))));
}

// The session page's Telemetry panel: what Claude Code's own OpenTelemetry events say about
// the session (GET /api/sessions/<id>/telemetry): per-request latency, the cost it reported
// next to the cost computed from the transcript, API errors and retries, and tool results.
// The panel is shown only when the session has telemetry. `timelineMarkers` turns the API
// errors into items the waterfall places among its own.

import { h, usd, tokens, duration, when, badge } from './util.js';

const REQUESTS_PAGE = 200;
/** Differences below this (USD) are rounding, not a disagreement. */
const EPSILON_USD = 1e-6;
const SVG = 'http://www.w3.org/2000/svg';
const CHART_HEIGHT = 60;
const CHART_SLOTS = 60;

/** An SVG element (h() makes HTML ones). */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

/** Whether the answer holds any telemetry event. */
export function hasTelemetry(data) {
  const c = data && data.counts;
  return Boolean(c && (c.requests || c.errors || c.tool_results));
}

/** Whether an API error is a retry (a second or later try that failed too). */
function isRetry(error) {
  return (error.attempt || 0) > 1;
}

/** A duration in ms as the page writes durations. */
function ms(value) {
  return value === null || value === undefined ? '–' : duration(value * 1e6);
}

/** A USD difference with its sign ("+$0.50", "−$0.0012", "$0.00"). */
function signedUsd(value) {
  if (value === null || value === undefined) return '–';
  if (Math.abs(value) <= EPSILON_USD) return usd(0);
  return `${value > 0 ? '+' : '−'}${usd(Math.abs(value))}`;
}

/** A cell with a difference: marked (text and class, never colour alone) when it is not ~0. */
function diffCell(value, title) {
  const differs = value !== null && value !== undefined && Math.abs(value) > EPSILON_USD;
  return h('td', { class: `num ${differs ? 'diff' : ''}`, title, dataset: { value: value ?? '' } },
    differs ? '≠ ' : '', signedUsd(value));
}

/** A per-request difference: reported minus computed, `null` unless both are known. */
function requestDiff(r) {
  return r.cost_usd !== null && r.cost_usd !== undefined && r.computed_usd !== null && r.computed_usd !== undefined
    ? r.cost_usd - r.computed_usd : null;
}

/**
 * The API errors as timeline items (`marker: true`): `api_error` for a first try,
 * `api_retry` for a retry that failed too. The waterfall sorts them in by time.
 */
export function timelineMarkers(data) {
  if (!data || !Array.isArray(data.errors)) return [];
  return data.errors.map((e) => ({
    marker: true,
    ts: e.ts_ns,
    time: e.ts,
    offset: e.offset,
    event: isRetry(e) ? 'api_retry' : 'api_error',
    summary: `${isRetry(e) ? `API retry ${e.attempt} failed` : 'API error'}${e.status_code ? ` ${e.status_code}` : ''}${e.error ? `: ${e.error}` : ''}${e.model ? ` (${e.model})` : ''}`,
    duration_ms: e.duration_ms,
  }));
}

/** Latency of each request as a bar chart (inline SVG; the table below has the numbers). */
function latencyChart(requests) {
  const timed = requests.filter((r) => typeof r.duration_ms === 'number');
  if (timed.length === 0) return h('p', { class: 'empty' }, 'No request reported its latency.');
  const max = Math.max(...timed.map((r) => r.duration_ms), 1);
  const sorted = timed.map((r) => r.duration_ms).sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  // A slot of 4 per request, at least CHART_SLOTS of them: a few requests stay thin bars.
  const width = Math.max(requests.length, CHART_SLOTS) * 4;
  const chart = svg('svg', {
    class: 'lat-chart', id: 'telemetry-latency', viewBox: `0 0 ${width} ${CHART_HEIGHT}`,
    preserveAspectRatio: 'none', role: 'img',
    'aria-label': `Latency of ${timed.length} requests: median ${ms(median)}, slowest ${ms(max)}`,
  });
  requests.forEach((r, i) => {
    if (typeof r.duration_ms !== 'number') return;
    const height = Math.max((CHART_HEIGHT * r.duration_ms) / max, 1);
    chart.append(svg('rect', { x: i * 4, y: CHART_HEIGHT - height, width: 3, height },
      svg('title', {}, `${when(r.ts)} · ${r.model || ''} · ${ms(r.duration_ms)}`)));
  });
  return h('figure', { class: 'lat-figure' }, chart,
    h('figcaption', {}, `Latency per request, oldest first: median ${ms(median)}, slowest ${ms(max)}.`));
}

function requestRow(r, maxMs) {
  const share = maxMs > 0 && typeof r.duration_ms === 'number' ? (100 * r.duration_ms) / maxMs : 0;
  const diff = requestDiff(r);
  return h('tr', { dataset: { offset: r.offset, request: r.request_id || '' }, class: Math.abs(diff ?? 0) > EPSILON_USD ? 'has-diff' : '' },
    h('td', {}, h('time', { datetime: r.ts }, when(r.ts))),
    h('td', {}, r.model || '–'),
    h('td', { class: 'num lat' }, h('span', { class: 'bar-track', 'aria-hidden': 'true' },
      h('span', { class: 'bar', style: `width:${share}%` })), ' ', ms(r.duration_ms)),
    h('td', { class: 'num' }, tokens(r.input_tokens)),
    h('td', { class: 'num' }, tokens(r.output_tokens)),
    h('td', { class: 'num' }, tokens(r.cache_read_tokens)),
    h('td', { class: 'num' }, tokens(r.cache_creation_tokens)),
    h('td', { class: 'num' }, usd(r.cost_usd)),
    h('td', { class: 'num', title: r.computed_usd === null ? 'No transcript usage with this request id (or no price for its model)' : '' },
      usd(r.computed_usd)),
    diffCell(diff, 'Reported minus computed'),
    h('td', { class: 'mono', title: r.request_id || '' }, r.request_id || '–'));
}

/** The requests: latency bars, tokens, reported and computed cost, their difference. */
function requestsTable(requests) {
  const maxMs = Math.max(...requests.map((r) => r.duration_ms || 0), 0);
  const body = h('tbody', {});
  let shown = 0;
  const more = h('button', { type: 'button', class: 'more' });
  const step = () => {
    requests.slice(shown, shown + REQUESTS_PAGE).forEach((r) => body.append(requestRow(r, maxMs)));
    shown = Math.min(requests.length, shown + REQUESTS_PAGE);
    more.hidden = shown >= requests.length;
    more.textContent = `Show ${Math.min(REQUESTS_PAGE, requests.length - shown)} more (${requests.length - shown} left)`;
  };
  more.addEventListener('click', step);
  step();
  let reported = 0;
  let computed = 0;
  let diff = 0;
  let both = 0;
  for (const r of requests) {
    reported += r.cost_usd || 0;
    computed += r.computed_usd || 0;
    const d = requestDiff(r);
    if (d !== null) {
      diff += d;
      both += 1;
    }
  }
  const foot = h('tfoot', {}, h('tr', { id: 'telemetry-requests-total' },
    h('th', { scope: 'row', colspan: 7 }, `Total of ${requests.length} requests`),
    h('td', { class: 'num', dataset: { value: reported } }, usd(reported)),
    h('td', { class: 'num', dataset: { value: computed } }, usd(computed)),
    diffCell(both ? diff : null, `Reported minus computed, over the ${both} requests with both`),
    h('td', {})));
  return [h('div', { class: 'table-scroll' }, h('table', { id: 'telemetry-requests' },
    h('caption', {}, 'API requests, oldest first. Reported: the cost Claude Code sent; computed: the price table applied to the transcript\'s usage of the same request id.'),
    h('thead', {}, h('tr', {},
      ['Time', 'Model'].map((t) => h('th', { scope: 'col' }, t)),
      ['Latency', 'Input', 'Output', 'Cache read', 'Cache write', 'Reported', 'Computed', 'Difference'].map((t) => h('th', { scope: 'col', class: 'num' }, t)),
      h('th', { scope: 'col' }, 'Request id'))),
    body, foot)), more];
}

/** The session's reconciliation, one row per model (as `ctrace cost --reconcile`). */
function reconcileTable(rows) {
  if (!rows || rows.length === 0) return null;
  return h('div', { class: 'table-scroll' }, h('table', { id: 'telemetry-reconcile' },
    h('caption', {}, 'Cost per model: computed from the transcript vs reported by telemetry (whole session).'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Model'),
      ['Requests (transcript / telemetry)', 'Computed', 'Reported', 'Difference', 'Only in transcript', 'Only in telemetry', 'Differing'].map((t) => h('th', { scope: 'col', class: 'num' }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: { model: r.model } },
      h('th', { scope: 'row' }, r.model),
      h('td', { class: 'num' }, `${r.transcript.requests} / ${r.telemetry.requests}`),
      h('td', { class: 'num' }, usd(r.transcript.cost_usd)),
      h('td', { class: 'num' }, usd(r.telemetry.cost_usd)),
      diffCell(r.difference_usd, 'Reported minus computed'),
      h('td', { class: 'num', title: (r.missing_in_telemetry_ids || []).join(' ') }, String(r.missing_in_telemetry)),
      h('td', { class: 'num', title: (r.missing_in_transcript_ids || []).join(' ') }, String(r.missing_in_transcript)),
      h('td', { class: `num ${r.mismatched ? 'diff' : ''}` }, r.mismatched ? `≠ ${r.mismatched}` : '0'))))));
}

/** The API errors, retries marked. */
function errorsTable(errors) {
  if (errors.length === 0) return h('p', { class: 'empty', id: 'telemetry-no-errors' }, 'No API errors.');
  return h('div', { class: 'table-scroll' }, h('table', { id: 'telemetry-errors' },
    h('caption', {}, 'API errors, oldest first; a retry is a second or later try.'),
    h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Model', 'Status', 'Attempt', 'Error', 'Duration'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, errors.map((e) => h('tr', { class: isRetry(e) ? 'retry' : 'api-error', dataset: { offset: e.offset } },
      h('td', {}, h('time', { datetime: e.ts }, when(e.ts))),
      h('td', {}, badge(isRetry(e) ? 'retry' : 'error')),
      h('td', {}, e.model || '–'),
      h('td', { class: 'num' }, e.status_code ?? '–'),
      h('td', { class: 'num' }, e.attempt ?? '–'),
      h('td', { class: 'err-text' }, e.error || '–'),
      h('td', { class: 'num' }, ms(e.duration_ms)))))));
}

/** Tool results summed per tool. */
function toolsTable(results) {
  if (results.length === 0) return null;
  const byTool = new Map();
  for (const r of results) {
    const name = r.tool_name || '(unknown)';
    const t = byTool.get(name) || { calls: 0, failed: 0, total: 0, max: 0 };
    t.calls += 1;
    if (r.success === false) t.failed += 1;
    t.total += r.duration_ms || 0;
    t.max = Math.max(t.max, r.duration_ms || 0);
    byTool.set(name, t);
  }
  return h('div', { class: 'table-scroll' }, h('table', { id: 'telemetry-tools' },
    h('caption', {}, 'Tool results as telemetry reported them.'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Tool'),
      ['Calls', 'Failed', 'Total time', 'Slowest'].map((t) => h('th', { scope: 'col', class: 'num' }, t)))),
    h('tbody', {}, [...byTool].sort((a, b) => b[1].calls - a[1].calls).map(([name, t]) => h('tr', {},
      h('th', { scope: 'row' }, name),
      h('td', { class: 'num' }, String(t.calls)),
      h('td', { class: `num ${t.failed ? 'diff' : ''}` }, String(t.failed)),
      h('td', { class: 'num' }, ms(t.total)),
      h('td', { class: 'num' }, ms(t.max)))))));
}

/**
 * The Telemetry panel for the answer of /api/sessions/<id>/telemetry: a hidden section when
 * the session has no telemetry.
 */
export function telemetryPanel(data) {
  const attrs = { id: 'telemetry', class: 'panel wide', 'aria-labelledby': 'telemetry-h' };
  if (!hasTelemetry(data)) return h('section', { ...attrs, hidden: true, dataset: { empty: 'true' } });
  const c = data.counts;
  const retries = data.errors.filter(isRetry).length;
  const shownAll = !data.truncated;
  return h('section', attrs,
    h('h3', { id: 'telemetry-h' }, 'Telemetry'),
    h('p', { id: 'telemetry-counts' },
      `${c.requests} API requests, ${c.errors} API errors${retries ? ` (${retries} of them retries)` : ''}, ${c.tool_results} tool results, from Claude Code's OpenTelemetry events.`,
      shownAll ? '' : ` The newest ${Math.max(data.requests.length, data.errors.length, data.tool_results.length)} of each are listed.`),
    reconcileTable(data.reconcile),
    data.requests.length ? [h('h4', {}, 'Requests'), latencyChart(data.requests), ...requestsTable(data.requests)] : null,
    h('h4', {}, 'API errors and retries'), errorsTable(data.errors),
    data.tool_results.length ? [h('h4', {}, 'Tools'), toolsTable(data.tool_results)] : null);
}

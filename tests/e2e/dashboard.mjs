// End-to-end check of the `ctrace serve` dashboard in headless Chromium (playwright-core).
//
//   node tests/e2e/dashboard.mjs <base-url> <config.json>
//
// config.json: {"session": ID with a tree, "cast_session": ID with a terminal recording or
// null, "search": a word to search for, "filter_tool": a tool name for the overview's Tool
// filter or null, "telemetry_session": ID with Claude Code telemetry
// (API errors among it) or null, "plain_session": ID without telemetry or null, "steps": the
// names of the steps to run (default: all), "screenshots": DIR}. Prints one JSON object on stdout
// with what the page showed (tests/serve_dashboard.rs asserts on it) and exits 0, or exits 1
// with {"fatal": message} when the browser could not be driven at all.
// Environment: CTRACE_CHROMIUM (default /usr/bin/chromium); playwright-core is resolved
// through NODE_PATH.

import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const [base, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const TIMEOUT = 90_000;
const out = { console_errors: [], page_errors: [], failed_requests: [], http_errors: [] };

function fatal(message) {
  process.stdout.write(`${JSON.stringify({ ...out, fatal: String(message) })}\n`);
  process.exit(1);
}

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  fatal(`playwright-core not found through NODE_PATH: ${e.message}`);
}

const profile = mkdtempSync(join(tmpdir(), 'ctrace-e2e-'));
mkdirSync(config.screenshots, { recursive: true });
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CTRACE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
} catch (e) {
  rmSync(profile, { recursive: true, force: true });
  fatal(`launching chromium: ${e.message}`);
}

const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(TIMEOUT);
page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
page.on('pageerror', (e) => out.page_errors.push(String(e)));
page.on('response', (r) => { if (r.status() >= 400) out.http_errors.push(`${r.status()} ${new URL(r.url()).pathname}`); });
page.on('requestfailed', (r) => {
  // The event stream is cut when the page navigates or closes: not a failure.
  if (!r.url().includes('/api/stream')) out.failed_requests.push(`${r.url()} ${r.failure()?.errorText}`);
});
// Anything outside the service is a defect: the page must work with no network.
const outside = [];
await page.route((url) => !url.href.startsWith(base), (route) => {
  outside.push(route.request().url());
  route.abort();
});

async function step(name, work) {
  if (Array.isArray(config.steps) && !config.steps.includes(name)) return;
  try {
    await work();
  } catch (e) {
    out[`${name}_error`] = String(e.message || e).split('\n')[0];
    // Where the page was when the step failed, for the report.
    try {
      out[`${name}_error_page`] = await page.evaluate(() => ({
        hash: location.hash,
        main: (document.getElementById('main')?.innerText || '').slice(0, 400),
      }));
      await page.screenshot({ path: join(config.screenshots, `${name}-failed.png`) });
    } catch (ignored) {
      // The page itself is gone; the error above says why.
    }
  }
}

await step('overview', async () => {
  // First render: from navigation to the totals and the first sessions table rows on screen.
  const started = Date.now();
  await page.goto(`${base}/`);
  await page.waitForSelector('#total-cost[data-value]');
  await page.waitForSelector('#sessions-table tbody tr[data-session]');
  out.first_render_ms = Date.now() - started;
  out.total_cost = Number(await page.getAttribute('#total-cost', 'data-value'));
  out.total_cost_text = await page.textContent('#total-cost');
  out.total_sessions = Number(await page.getAttribute('#total-sessions', 'data-value'));
  out.tokens_by_type = {};
  for (const kind of ['input', 'output', 'cache-creation', 'cache-read']) {
    out.tokens_by_type[kind] = Number(await page.getAttribute(`#tokens-${kind}`, 'data-value'));
  }
  await page.waitForSelector('#sessions-table tbody tr[data-session]');
  out.table_rows = await page.locator('#sessions-table tbody tr[data-session]').count();
  out.chart_canvas = await page.locator('#cost-chart canvas').count();
  out.live_state = await page.textContent('#live-state');
  await page.waitForSelector('#error-rate[data-done]');
  out.error_rate_text = await page.textContent('#error-rate');
  out.error_rate_errors = Number(await page.getAttribute('#error-rate', 'data-errors'));
  out.error_rate_calls = Number(await page.getAttribute('#error-rate', 'data-calls'));
  // The panels filled after the first render.
  await page.waitForSelector('#top-tools[data-done]');
  out.top_tools = await page.locator('#top-tools li').count();
  out.tool_options = await page.locator('#filters select[name="tool"] option').count();
  await page.waitForSelector('#task-status[data-done]');
  out.task_status_text = await page.textContent('#task-status');
  await page.screenshot({ path: join(config.screenshots, 'overview.png'), fullPage: true });
});

if (config.filter_tool) {
  await step('filter_tool', async () => {
    // The Tool filter, chosen in the form: totals, error rate and the table follow it.
    await page.goto(`${base}/#/`);
    await page.waitForSelector('#filters select[name="tool"]');
    await page.selectOption('#filters select[name="tool"]', config.filter_tool);
    await page.click('#filters button[type="submit"]');
    await page.waitForURL((url) => url.hash.includes('tool='));
    await page.waitForSelector('#total-sessions[data-value]');
    await page.waitForSelector('#sessions-table tbody tr[data-session], #sessions-table .empty');
    out.filter_tool_sessions = Number(await page.getAttribute('#total-sessions', 'data-value'));
    out.filter_tool_calls = Number(await page.getAttribute('#error-rate', 'data-calls'));
    out.filter_tool_table_rows = await page.locator('#sessions-table tbody tr[data-session]').count();
    out.filter_tool_top = await page.locator('#top-tools li .bar-label').first().textContent();
    await page.screenshot({ path: join(config.screenshots, 'filter-tool.png'), fullPage: true });
  });
}

await step('sort', async () => {
  await page.goto(`${base}/#/`);
  await page.waitForSelector('#sessions-table tbody tr[data-session]');
  // Keyboard: focus the Cost header button and press Enter (twice: descending then ascending).
  const button = page.locator('#sessions-table th button[data-key="cost"]');
  await button.focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('#sessions-table th[aria-sort="descending"] button[data-key="cost"]');
  const values = await page.$$eval('#sessions-table tbody td[data-value]:last-child',
    (cells) => cells.map((c) => Number(c.dataset.value)));
  out.sorted_costs = values;
  out.sort_descending = values.every((v, i) => i === 0 || values[i - 1] >= v);
  out.focus_after_sort = await page.evaluate(() => document.activeElement?.dataset?.key || null);
});

await step('live', async () => {
  await page.waitForSelector('#live-state[data-state="open"]', { state: 'attached' });
  const session = `e2e-live-${Date.now()}`;
  out.live_session = session;
  const payload = { hook_event_name: 'UserPromptSubmit', session_id: session, cwd: '/tmp/e2e-live', prompt: 'hello from the e2e test' };
  const response = await fetch(`${base}/ingest/hook`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) });
  out.live_post_status = response.status;
  const urlBefore = page.url();
  await page.waitForSelector(`#activity-list li[data-session="${session}"]`);
  out.live_in_activity = true;
  await page.waitForSelector(`#sessions-table tr[data-session="${session}"]`);
  out.live_in_table = true;
  out.live_no_reload = page.url() === urlBefore && (await page.evaluate(() => performance.getEntriesByType('navigation').length)) === 1;
  await page.screenshot({ path: join(config.screenshots, 'live.png') });
});

await step('live_session', async () => {
  // The live session's page: a second hook of it shows up without a reload.
  if (!out.live_session) throw new Error('no live session (the live step failed)');
  await page.goto(`${base}/#/session/${encodeURIComponent(out.live_session)}`);
  await page.waitForSelector('#records li.rec');
  const before = await page.locator('#records li.rec').count();
  const payload = {
    hook_event_name: 'PostToolUse', session_id: out.live_session, cwd: '/tmp/e2e-live',
    tool_name: 'Bash', tool_use_id: 'toolu_e2e', tool_input: { command: 'echo e2e' },
    tool_response: { stdout: 'e2e-tool-output', stderr: '', interrupted: false },
  };
  await fetch(`${base}/ingest/hook`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload) });
  // (Locators, not waitForFunction: the page's CSP forbids evaluating strings.)
  await page.locator('#records li.rec').nth(before).waitFor();
  // A hook's tool call is shown with its response.
  out.live_session_tool_text = await page.locator('#records li.rec').nth(before).locator('pre').textContent();
  await page.waitForSelector('#timeline[data-refreshed]');
  out.live_session_records = [before, await page.locator('#records li.rec').count()];
  out.live_session_timeline = await page.locator('#waterfall > li').count();
});

await step('session', async () => {
  await page.goto(`${base}/#/session/${encodeURIComponent(config.session)}`);
  await page.waitForSelector('#waterfall li');
  out.waterfall_rows = await page.locator('#waterfall > li').count();
  out.waterfall_nested = await page.locator('#waterfall details').count();
  out.tree_nodes = await page.locator('#tree-html li').count();
  out.tree_cost_text = await page.textContent('#tree-html .node .meta');
  // The Cost panel: turns and subagents from the tree, tools from /api/cost.
  await page.waitForSelector('#cost-turns');
  out.cost_turns_total = Number(await page.getAttribute('#cost-turns', 'data-total'));
  out.cost_turns_count = Number(await page.getAttribute('#cost-turns', 'data-count'));
  out.cost_turn_rows = await page.locator('#cost-turns tbody tr').count();
  out.cost_subagents = await page.locator('#cost-subagents').count()
    ? Number(await page.getAttribute('#cost-subagents', 'data-count')) : 0;
  await page.waitForSelector('#cost-tools-box[data-done]');
  out.cost_tools_total = Number(await page.getAttribute('#cost-tools', 'data-total'));
  out.cost_tools_rows = await page.locator('#cost-tools tbody tr').count();
  await page.locator('#cost').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(config.screenshots, 'session-cost.png'), fullPage: false });
  await page.waitForSelector('#mermaid svg, #mermaid .error');
  out.mermaid_svg = await page.locator('#mermaid svg').count();
  out.mermaid_nodes = await page.locator('#mermaid svg g.node').count();
  await page.waitForSelector('#records li.rec');
  out.records_shown = await page.locator('#records li.rec').count();
  await page.waitForSelector('#terminal-box #no-recording, #terminal-box #player, #terminal-box .error');
  out.session_no_recording = await page.locator('#no-recording').count();
  await page.screenshot({ path: join(config.screenshots, 'session.png'), fullPage: false });
  await page.locator('#tree').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(config.screenshots, 'session-tree.png'), fullPage: false });
});

if (config.cast_session) {
  await step('cast', async () => {
    const response = await fetch(`${base}/api/sessions/${encodeURIComponent(config.cast_session)}/cast`);
    out.cast_status = response.status;
    await page.goto(`${base}/#/session/${encodeURIComponent(config.cast_session)}`);
    await page.waitForSelector('#terminal-box #no-recording, #terminal-box .ap-wrapper, #terminal-box .error');
    out.player = await page.locator('#terminal-box .ap-wrapper').count();
    out.cast_no_recording = await page.locator('#terminal-box #no-recording').count();
    if (out.player) {
      // Plays: start it, and the recording's output appears on the player's terminal.
      await page.locator('#terminal').scrollIntoViewIfNeeded();
      await page.locator('#terminal-box .ap-overlay-start, #terminal-box .ap-playback-button').first().click();
      await page.locator('#terminal-box .ap-term', { hasText: 'hello from the dashboard test' }).waitFor({ timeout: 30_000 });
      out.player_played = true;
    }
    await page.locator('#terminal').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(config.screenshots, 'terminal.png') });
  });
}

if (config.search) {
  await step('search', async () => {
    const response = await fetch(`${base}/api/search?q=${encodeURIComponent(config.search)}&limit=5`);
    out.search_status = response.status;
    await page.goto(`${base}/#/`);
    await page.fill('#search-q', config.search);
    await page.press('#search-q', 'Enter');
    out.search_stage = 'submitted';
    await page.waitForSelector('#search-hits li a, #main .error, #main .empty');
    out.search_stage = 'answered';
    out.search_hits = await page.locator('#search-hits li').count();
    if (out.search_hits > 0) {
      await page.screenshot({ path: join(config.screenshots, 'search.png') });
      const href = await page.getAttribute('#search-hits li a', 'href');
      out.search_href = href;
      await page.click('#search-hits li a');
      out.search_stage = 'opened';
      const at = new URLSearchParams(href.split('?')[1]).get('at');
      await page.waitForSelector(`#record-${at}.at`);
      out.search_opened_record = Number(at);
    }
  });
}

if (config.telemetry_session) {
  await step('telemetry', async () => {
    // The Telemetry panel appears (it is hidden until the session's telemetry arrives), and
    // the API errors are marked on the timeline.
    await page.goto(`${base}/#/session/${encodeURIComponent(config.telemetry_session)}`);
    await page.waitForSelector('#telemetry[data-done]:not([hidden])');
    out.telemetry_requests = await page.locator('#telemetry-requests tbody tr').count();
    out.telemetry_request_diffs = await page.locator('#telemetry-requests tbody tr.has-diff').count();
    out.telemetry_latency_bars = await page.locator('#telemetry-latency rect').count();
    out.telemetry_errors = await page.locator('#telemetry-errors tbody tr').count();
    out.telemetry_retries = await page.locator('#telemetry-errors tbody tr.retry').count();
    out.telemetry_reconcile_rows = await page.locator('#telemetry-reconcile tbody tr').count();
    out.telemetry_diff_cells = await page.locator('#telemetry td.diff').count();
    out.telemetry_counts_text = await page.textContent('#telemetry-counts');
    await page.waitForSelector('#waterfall .wf-marker');
    out.timeline_markers = await page.locator('#waterfall .wf-marker').count();
    out.timeline_retry_markers = await page.locator('#waterfall .wf-marker.ev-api_retry').count();
    out.jump_telemetry_visible = await page.locator('#jump-telemetry').isVisible();
    await page.locator('#telemetry').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(config.screenshots, 'telemetry.png'), fullPage: true });
    if (config.plain_session) {
      await page.goto(`${base}/#/session/${encodeURIComponent(config.plain_session)}`);
      // The new page, not the previous one's panel.
      await page.locator('#main h2 code', { hasText: config.plain_session }).waitFor();
      await page.waitForSelector('#telemetry[data-done]', { state: 'attached' });
      out.plain_telemetry_hidden = await page.locator('#telemetry').isHidden();
      // Live: an API error of this session posted over OTLP/JSON shows the panel and marks
      // the timeline without a reload.
      await page.waitForSelector('#live-state[data-state="open"]', { state: 'attached' });
      const attr = (key, value) => ({ key, value });
      const request = { resourceLogs: [{ scopeLogs: [{ logRecords: [{
        timeUnixNano: String(BigInt(Date.now()) * 1000000n),
        body: { stringValue: 'claude_code.api_error' },
        attributes: [
          attr('event.name', { stringValue: 'api_error' }),
          attr('session.id', { stringValue: config.plain_session }),
          attr('status_code', { stringValue: '500' }),
          attr('attempt', { intValue: '3' }),
          attr('error', { stringValue: 'Internal server error' }),
        ],
      }] }] }] };
      const response = await fetch(`${base}/v1/logs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) });
      out.plain_live_post_status = response.status;
      await page.waitForSelector('#telemetry[data-refreshed]:not([hidden])');
      out.plain_live_errors = await page.locator('#telemetry-errors tbody tr.retry').count();
      await page.waitForSelector('#waterfall .wf-marker');
      out.plain_live_markers = await page.locator('#waterfall .wf-marker.ev-api_retry').count();
      out.plain_live_jump_visible = await page.locator('#jump-telemetry').isVisible();
    }
  });
}

out.outside_requests = outside;
await context.close();
rmSync(profile, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(out)}\n`);

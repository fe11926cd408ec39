// First render of the `ctrace serve` dashboard in headless Chromium (playwright-core): from
// navigation to the overview totals and the first sessions-table rows on screen, the same
// condition as tests/e2e/dashboard.mjs. Each run is a fresh browser context (empty cache).
//
//   NODE_PATH=.../node_modules node scripts/first_render.mjs <base-url> [runs]
//
// Prints one line of JSON: {"runs_ms": [...], "p50_ms": N}. Environment: CTRACE_CHROMIUM
// (default /usr/bin/chromium).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const [base, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);

const browser = await chromium.launch({
  executablePath: process.env.CTRACE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const times = [];
for (let i = 0; i < runs; i += 1) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const started = Date.now();
  await page.goto(`${base}/`);
  await page.waitForSelector('#total-cost[data-value]');
  await page.waitForSelector('#sessions-table tbody tr[data-session]');
  times.push(Date.now() - started);
  await context.close();
}
await browser.close();
const sorted = [...times].sort((a, b) => a - b);
process.stdout.write(`${JSON.stringify({ runs_ms: times, p50_ms: sorted[Math.floor(sorted.length / 2)] })}\n`);

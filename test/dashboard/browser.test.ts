/**
 * The dashboard in a real browser (Debian's chromium through playwright-core, headless) against
 * `barkeep serve` on the simulated market with an accelerated clock and an API token, as a user
 * opens it: the candles are drawn, orders appear as the loop trades with no reload, the feed rung is
 * shown, the kill switch is refused without the token and works with it, and every view is
 * screenshotted (test-results/screenshots/, git-ignored). Then the same page on a non-loopback
 * bind, where even reads need the token.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchBrowser, screenshotPath } from '../helpers/browser.ts';
import { serve, until, type Served } from '../helpers/serve.ts';

const HOLD = fileURLToPath(new URL('../fixtures/trader-hold-strategy.ts', import.meta.url));
const TOKEN = 'dashboard-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const YAML = `runtime:
  clock: accelerated
  clock_speed: 60
  clock_start: "2026-01-05T15:00:00Z"
collector:
  backfill_days: 1
trader:
  autostart: false
  strategy: module
  strategy_module: ${JSON.stringify(HOLD)}
  strategy_params: { qty: 10 }
`;

/** Pixels in the chart's canvases that have a candle's colour (up #34d399 or down #f87171). */
function candlePixels(page: Page, symbol: string): Promise<number> {
  return page.evaluate((sym) => {
    let n = 0;
    // Runs in the page (the DOM's types are not in this project's lib).
    const doc = (globalThis as any).document;
    for (const c of doc.querySelectorAll(`[data-testid="chart-${sym}"] canvas`) as any[]) {
      if (!c.width || !c.height) continue;
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if ((Math.abs(r - 0x34) < 8 && Math.abs(g - 0xd3) < 8 && Math.abs(b - 0x99) < 8) || (Math.abs(r - 0xf8) < 8 && Math.abs(g - 0x71) < 8 && Math.abs(b - 0x71) < 8)) n++;
      }
    }
    return n;
  }, symbol);
}

async function killed(app: Served): Promise<boolean> {
  return (await app.get('/live/status')).body.risk.killed;
}

test('the dashboard draws candles, shows orders as they happen and the feed rung, and guards the kill switch with the token', async () => {
  await using app = await serve({ yaml: YAML, env: { BARKEEP_API_TOKEN: TOKEN } });
  await using browser = await launchBrowser();
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => void d.accept());

  // Overview: the actors and the collector, read without a token on this loopback bind.
  await page.goto(`${app.url}/`);
  await page.waitForSelector('body[data-loaded="true"]');
  await page.waitForSelector('[data-actor="trader"] .state-running');
  assert.equal(await page.textContent('[data-testid="collector-source"]'), 'sim (Simulated)');
  assert.equal(await page.textContent('[data-testid="health"]'), 'healthy');
  await page.waitForSelector('body[data-stream="open"]');
  await page.screenshot({ path: screenshotPath('overview') });

  // Trading: no orders yet. The loop starts (over the API) and its orders appear without a reload.
  await page.click('nav a[data-view="trading"]');
  await page.evaluate(() => ((globalThis as any).__sameDocument = true));
  assert.equal(await page.locator('#orders-table tbody tr').count(), 0);
  assert.equal((await app.post('/live/start', {}, AUTH)).status, 200);
  await page.waitForSelector('#orders-table tbody tr[data-state="filled"]', { timeout: 30_000 });
  await page.waitForSelector('#fills-table tbody tr');
  await page.waitForSelector('#positions-table tbody tr[data-symbol]');
  assert.equal(await page.evaluate(() => (globalThis as any).__sameDocument), true, 'the page was not reloaded');
  const orders = (await app.get('/orders')).body.orders;
  const row = page.locator(`#orders-table tr[data-order="${orders[0].client_order_id}"]`);
  assert.match((await row.textContent())!, /hold 10/);
  await page.screenshot({ path: screenshotPath('trading') });

  // Symbols: the candles are drawn, with the fills on them, and the rung the arbiter serves from.
  await page.click('nav a[data-view="symbols"]');
  await page.waitForSelector('[data-testid="chart-QQQ"][data-ready="true"]');
  await until(async () => (await candlePixels(page, 'QQQ')) > 200, 'candles drawn on the QQQ chart');
  const feed = await until(async () => {
    const f = (await app.get('/live/status')).body.feed.QQQ;
    return f?.rung && (await page.textContent('[data-testid="rung-QQQ"]')) === f.rung && f;
  }, 'the page to show the rung /live/status shows');
  assert.ok(['preload', 'cache'].includes(feed.rung));
  assert.ok(Number(await page.getAttribute('[data-testid="chart-QQQ"]', 'data-markers')) >= 1, 'the fill is marked on the chart');
  await page.screenshot({ path: screenshotPath('symbols') });

  // A page opened later draws the ladder's switches made before it was opened (GET /feed/switches).
  const history = (await app.get('/feed/switches?symbol=QQQ')).body.switches.QQQ;
  assert.ok(history.length >= 1, JSON.stringify(history));
  const late = await browser.newPage();
  await late.goto(`${app.url}/#symbols`);
  await late.waitForSelector('[data-testid="chart-QQQ"][data-ready="true"]');
  // The first paint holds the newest bars; the day of history before them follows right after.
  const cached = (await app.get('/bars/QQQ?bar_size=1Min&limit=10000')).body.bars.length;
  assert.ok(cached > 720, `${cached} bars cached`);
  await until(async () => Number(await late.getAttribute('[data-testid="chart-QQQ"]', 'data-bars')) >= cached && true, 'the whole history on the chart');
  const items = await until(async () => {
    const texts = await late.locator('[data-testid="switches-QQQ"] li').allTextContents();
    return texts.length >= history.length && texts;
  }, 'the late page to list the earlier switches');
  assert.ok(
    items.some((t) => t.includes(history[0].reason)),
    `the first switch (${history[0].reason}) is listed: ${items.join(' | ')}`,
  );
  assert.equal(await late.locator('[data-testid="ladder-QQQ"] span').count(), items.length, 'one timeline segment per switch');
  await late.close();

  // The kill switch: asked for the token, refused without it, engaged with it.
  await page.click('[data-testid="kill"]');
  await page.waitForSelector('[data-testid="token-dialog"][open]');
  await page.click('[data-testid="token-skip"]');
  await page.waitForSelector('[data-testid="notice"]:has-text("Refused")');
  assert.equal(await killed(app), false, 'without the token the kill switch is refused');
  await page.click('[data-testid="kill"]');
  await page.waitForSelector('[data-testid="token-dialog"][open]');
  await page.fill('[data-testid="token-input"]', TOKEN);
  await page.click('[data-testid="token-ok"]');
  await page.waitForSelector('[data-testid="killed"]:visible');
  assert.equal(await killed(app), true);
  // The token is kept for the session: resume asks nothing.
  await page.click('[data-testid="resume"]');
  await page.waitForSelector('[data-testid="killed"]', { state: 'hidden' });
  assert.equal(await killed(app), false);

  // Backtests: none yet, then one run over the cached bars, with its equity curve and metrics.
  await page.click('nav a[data-view="backtests"]');
  await page.waitForSelector('[data-testid="backtests-empty"]:visible');
  assert.equal(await page.textContent('[data-testid="backtests-empty"]'), 'no backtests yet');
  await page.screenshot({ path: screenshotPath('backtests-empty') });
  const started = await app.post('/backtests', { symbols: ['QQQ', 'SPY'], from: '2026-01-04T15:00:00Z', to: '2026-01-05T15:00:00Z' }, AUTH);
  assert.equal(started.status, 202, JSON.stringify(started.body));
  await until(async () => (await app.get(`/backtests/${started.body.id}`)).body.state === 'done', 'the backtest to finish', 60_000);
  await page.click('nav a[data-view="overview"]');
  await page.click('nav a[data-view="backtests"]');
  await page.waitForSelector(`#backtests-table tr[data-backtest="${started.body.id}"]`);
  await page.waitForSelector('#equity-chart[data-points]:not([data-points="0"])');
  assert.match((await page.textContent('#backtest-metrics'))!, /final equity/);
  await page.screenshot({ path: screenshotPath('backtests') });

  // The interactive reference, from node_modules: one block per documented operation.
  const doc = (await app.get('/openapi.json')).body;
  const operations = Object.values<any>(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
  await page.goto(`${app.url}/docs`);
  await page.waitForSelector('.opblock');
  assert.equal(await page.locator('.opblock').count(), operations);
  await page.screenshot({ path: screenshotPath('docs') });
  assert.deepEqual(errors, []);
});

test('on a non-loopback bind the page asks for the token first, and reads without it are refused', async () => {
  const yaml = 'collector:\n  autostart: false\ntrader:\n  autostart: false\n';
  await using app = await serve({ yaml, env: { BARKEEP_API_TOKEN: TOKEN, BARKEEP_HOST: '0.0.0.0' } });
  const url = app.url.replace('0.0.0.0', '127.0.0.1');
  const res = await fetch(`${url}/live/status`);
  assert.equal(res.status, 401);
  assert.equal((await fetch(`${url}/live/status`, { headers: AUTH })).status, 200);
  assert.equal((await fetch(`${url}/events`)).status, 401);
  const info = (await (await fetch(`${url}/dashboard/info`)).json()) as { reads_need_token: boolean };
  assert.deepEqual(info.reads_need_token, true);

  await using browser = await launchBrowser();
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector('[data-testid="token-dialog"][open]');
  assert.equal(await page.locator('[data-actor]').count(), 0, 'nothing is shown before the token');
  await page.fill('[data-testid="token-input"]', TOKEN);
  await page.click('[data-testid="token-ok"]');
  await page.waitForSelector('[data-actor="collector"] .state-running');
  await page.waitForSelector('body[data-stream="open"]');
});

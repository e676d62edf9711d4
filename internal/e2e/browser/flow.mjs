// The browser end-to-end flow of LiveHub's web pages, in headless Chromium
// driven by playwright-core (Debian's /usr/bin/chromium; no browser is
// downloaded). internal/e2e/browser_test.go starts a livehub node with -dev
// and runs this script with:
//
//   LIVEHUB_HTTP      http://127.0.0.1:PORT
//   HOST_TOKEN        a token with the host role
//   VIEWER_TOKENS     three buyer tokens, comma-separated
//   ARTIFACTS_DIR     where screenshots go
//   CHROMIUM          the browser binary (default /usr/bin/chromium)
//
// The play: the host starts a stream and launches a sale of 3 units (limit 2
// per buyer); viewer 1 buys twice, one unit each time, viewer 2 buys the
// last unit with the keyboard alone while viewer 3's connection is down,
// viewer 3 reconnects, recovers and sees the sale sold out; every order turns
// paid through the buyer's user:# channel; the host page shows the 3 orders
// and the revenue. Then the host hands one of viewer 1's paid orders to a
// courier; the courier page moves it on the way and drives, and viewer 1's
// tracking page shows the timeline and the courier moving on its map. It
// prints "browser: N passed, M failed" and exits 1 on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.LIVEHUB_HTTP;
const hostToken = process.env.HOST_TOKEN;
const viewerTokens = (process.env.VIEWER_TOKENS || '').split(',').filter(Boolean);
const artifacts = process.env.ARTIFACTS_DIR || join(process.cwd(), 'artifacts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!base || !hostToken || viewerTokens.length < 3) {
  console.error('set LIVEHUB_HTTP, HOST_TOKEN and VIEWER_TOKENS (3 tokens)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
for (const f of readdirSync(artifacts)) if (f.endsWith('.png')) rmSync(join(artifacts, f)); // no stale shots

const PRICE = 499000;
const T = 15000; // per wait
let passed = 0;
let failed = 0;
const problems = [];

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message.split('\n').slice(0, 6).join('\n     ')}`);
    throw e;
  }
}

function check(cond, msg) { if (!cond) throw new Error(msg); }

const userDataDir = mkdtempSync(join(tmpdir(), 'livehub-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});

const pages = [];
async function open(name, url, viewport) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: console: ${m.text()}`); });
  await page.goto(url);
  pages.push({ name, page });
  return page;
}
const shot = (page, file) => page.screenshot({ path: join(artifacts, file), fullPage: true });
const connected = (page) => page.waitForSelector('#conn[data-state="connected"]', { timeout: T });

let ok = true;
try {
  let streamID = '';
  const host = await open('host', `${base}/host.html#token=${hostToken}`);

  await step('host page connects and starts a stream', async () => {
    await connected(host);
    await host.fill('#stream-title', 'Browser e2e: sneakers');
    await host.click('#start-form button[type=submit]');
    await host.waitForSelector('#stream-card:not([hidden])', { timeout: T });
    streamID = (await host.textContent('#stream-id')).trim();
    check(/^str_[0-9a-f]{24}$/.test(streamID), `stream id ${streamID}`);
    check(new URL(host.url()).searchParams.get('stream') === streamID, 'the address names the stream');
  });

  const small = { width: 360, height: 740 };
  const viewers = [];
  await step('three viewers open the room at 360px', async () => {
    for (let i = 0; i < 3; i++) {
      viewers.push(await open(`viewer${i + 1}`, `${base}/viewer.html?stream=${streamID}#token=${viewerTokens[i]}`, small));
    }
    for (const v of viewers) {
      await connected(v);
      await v.waitForFunction(() => window.livehub.subs.get(`live:${new URLSearchParams(location.search).get('stream')}`)?.active, null, { timeout: T });
    }
    const title = await viewers[0].textContent('#title');
    check(title.includes('Browser e2e'), `title ${title}`);
  });

  await step('host launches a sale of 3 units with a countdown', async () => {
    await host.fill('#f-name', 'Air Max 42');
    await host.fill('#f-price', String(PRICE));
    await host.fill('#f-qty', '3');
    await host.fill('#f-limit', '2');
    await host.fill('#f-countdown', '3');
    await host.fill('#f-duration', '600');
    await host.click('#sale-form button[type=submit]');
    await host.waitForSelector('#sale-note[data-kind="ok"]', { timeout: T });
    await host.waitForSelector('#live-card:not([hidden])', { timeout: T });
  });

  await step('viewers see the countdown, then the sale opens', async () => {
    for (const v of viewers) {
      await v.waitForSelector('#sale[data-state="scheduled"]', { timeout: T });
      check(/^\d+:\d\d$/.test((await v.textContent('#countdown')).trim()), 'countdown shows m:ss');
      check(await v.isDisabled('#buy'), 'buy is disabled before the start');
    }
    await shot(viewers[0], 'viewer1-countdown.png');
    for (const v of viewers) {
      await v.waitForSelector('#sale[data-state="live"]', { timeout: T });
      await v.waitForSelector('#stock-left[data-left="3"]', { timeout: T });
      check(await v.isEnabled('#buy'), 'buy is enabled when live');
    }
  });

  await step('the viewer page fits 360px without horizontal scrolling', async () => {
    const w = await viewers[0].evaluate(() => document.documentElement.scrollWidth);
    check(w <= 360, `page is ${w}px wide at a 360px viewport`);
  });

  async function buyAndPay(v, n, useKeyboard) {
    const before = await v.locator('#orders li').count();
    if (useKeyboard) {
      await v.focus('#qty');
      await v.keyboard.press('Tab');
      check(await v.evaluate(() => document.activeElement && document.activeElement.id === 'buy'), 'Tab from quantity reaches the buy button');
      await v.keyboard.press('Enter');
    } else {
      await v.selectOption('#qty', String(n));
      await v.click('#buy');
    }
    await v.waitForFunction((b) => document.querySelectorAll('#orders li').length > b, before, { timeout: T });
    const li = v.locator('#orders li').first();
    check((await li.getAttribute('data-status')) === 'pending_payment', 'a new order is pending payment');
    const pay = li.locator('button[data-pay]');
    if (useKeyboard) {
      await pay.focus();
      await v.keyboard.press('Enter');
    } else {
      await pay.click();
    }
    await v.waitForFunction(() => {
      const first = document.querySelector('#orders li');
      return first && first.dataset.status === 'paid';
    }, null, { timeout: T });
    const via = await li.getAttribute('data-via');
    check(via === 'socket', `the order turned paid through ${via}, want the user:# channel`);
  }

  await step('viewer 1 buys one unit and pays; the order turns paid via user:#', async () => {
    await buyAndPay(viewers[0], 1, false);
    for (const v of viewers) await v.waitForSelector('#stock-left[data-left="2"]', { timeout: T });
  });

  await step('viewer 1 buys a second unit (its limit) and pays', async () => {
    await buyAndPay(viewers[0], 1, false);
    await shot(viewers[0], 'viewer1-paid.png');
    for (const v of viewers.slice(0, 2)) await v.waitForSelector('#stock-left[data-left="1"]', { timeout: T });
  });

  await step('viewer 3 loses its connection and shows "reconnecting"', async () => {
    const v3 = viewers[2];
    await v3.evaluate(() => { window.livehub.opts.minDelay = 4000; window.livehub.ws.close(); });
    await v3.waitForSelector('#conn[data-state="reconnecting"]', { timeout: T });
    check(await v3.isVisible('#conn-banner'), 'the reconnecting banner shows');
    check((await v3.textContent('#conn')).includes('Reconnecting'), 'the badge says Reconnecting');
    await shot(v3, 'viewer3-reconnecting.png');
  });

  await step('viewer 2 buys the last unit with the keyboard and pays', async () => {
    await buyAndPay(viewers[1], 1, true);
    await viewers[1].waitForSelector('#stock-left[data-left="0"]', { timeout: T });
    await shot(viewers[1], 'viewer2-paid.png');
  });

  await step('viewer 3 reconnects, recovers and sees the sale sold out', async () => {
    const v3 = viewers[2];
    await connected(v3);
    await v3.waitForSelector('#stock-left[data-left="0"]', { timeout: T });
    await v3.waitForSelector('#sale[data-state="sold_out"]', { timeout: T });
    check(await v3.isDisabled('#buy'), 'buy is disabled when sold out');
    check((await v3.textContent('#buy')).trim() === 'Sold out', 'the button says Sold out');
    check(!(await v3.isVisible('#conn-banner')), 'the banner is gone');
    // The bar drains with a transition; it ends empty.
    await v3.waitForFunction(() => getComputedStyle(document.querySelector('#stock-fill')).transform === 'matrix(0, 0, 0, 1, 0, 0)', null, { timeout: T })
      .catch(async () => { throw new Error(`the stock bar is not empty: ${await v3.evaluate(() => getComputedStyle(document.querySelector('#stock-fill')).transform)}`); });
    await shot(v3, 'viewer3-sold-out.png');
  });

  await step('the host page shows 3 paid orders and the revenue', async () => {
    await host.waitForFunction(() => document.querySelectorAll('#orders tr[data-status="paid"]').length === 3, null, { timeout: T });
    check((await host.locator('#orders tr').count()) === 3, 'exactly 3 order rows');
    await host.waitForSelector(`#revenue[data-amount="${3 * PRICE}"]`, { timeout: T });
    check((await host.textContent('#n-orders')).trim() === '3', 'orders figure is 3');
    check((await host.textContent('#n-units')).trim() === '3', 'units figure is 3');
    await host.waitForSelector('#cur-left[data-left="0"]', { timeout: T });
    check((await host.textContent('#cur-sold')).trim() === '3 paid', 'the sale shows 3 paid units');
    await shot(host, 'host-orders.png');
  });

  await step('hearts go through likes.add and come back as likes.count', async () => {
    const v = viewers[0];
    for (let i = 0; i < 3; i++) await v.click('#heart');
    await v.waitForFunction(() => Number(document.querySelector('#likes').textContent) >= 3, null, { timeout: T });
  });

  await step('chat reaches the other viewers', async () => {
    await viewers[1].fill('#chat-text', 'halo kak, dapat!');
    await viewers[1].press('#chat-text', 'Enter');
    await viewers[0].waitForFunction(() => document.querySelector('#chat').textContent.includes('halo kak, dapat!'), null, { timeout: T });
    await shot(viewers[0], 'viewer1-chat.png');
  });

  // --- delivery: the host hands one of viewer 1's paid orders to a courier ---
  const START = { lat: -6.2, lng: 106.82 };
  const ADDRESS = { lat: START.lat + 600 / 110540, lng: START.lng, text: 'Jl. Kebon Sirih 12, Jakarta' }; // ~600 m north
  let orderID = '';
  let courierToken = '';
  await step('the host assigns a courier to one of viewer 1\'s paid orders', async () => {
    orderID = await viewers[0].getAttribute('#orders li[data-status="paid"]', 'data-order');
    check(/^ord_/.test(orderID || ''), `paid order id ${orderID}`);
    const tok = await fetch(`${base}/dev/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'courier-dedi', name: 'Dedi Kurir', roles: ['courier'] }),
    });
    check(tok.ok, `/dev/token answered ${tok.status}`);
    courierToken = (await tok.json()).token;
    const res = await fetch(`${base}/v1/orders/${orderID}/courier`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${hostToken}` },
      body: JSON.stringify({ courier_id: 'courier-dedi', address: ADDRESS }),
    });
    const body = await res.json();
    check(res.status === 200 && body.status === 'assigned', `assign answered ${res.status} ${JSON.stringify(body)}`);
  });

  let courier;
  let track;
  await step('the courier and the buyer\'s tracking pages open', async () => {
    courier = await open('courier', `${base}/courier.html?order=${orderID}&from=${START.lat},${START.lng}#token=${courierToken}`, small);
    track = await open('track', `${base}/track.html?order=${orderID}#token=${viewerTokens[0]}`, small);
    for (const p of [courier, track]) {
      await connected(p);
      await p.waitForFunction(() => window.livehub.subs.get(`order:${new URLSearchParams(location.search).get('order')}`)?.active, null, { timeout: T });
    }
    await track.waitForSelector('#timeline li[data-step="assigned"][data-done="true"]', { timeout: T });
    await track.waitForSelector('#pin[visibility="visible"]', { timeout: T });
    check(await track.getAttribute('#note', 'data-kind') !== 'error', `tracking page note: ${await track.textContent('#note')}`);
  });

  await step('the courier picks the order up and goes on the way; the timeline follows', async () => {
    await courier.click('button[data-status="picked_up"]');
    await courier.waitForSelector('#note[data-status="picked_up"]', { timeout: T });
    await track.waitForSelector('#timeline li[data-step="picked_up"][data-done="true"]', { timeout: T });
    await courier.click('button[data-status="on_the_way"]');
    await courier.waitForSelector('#note[data-status="on_the_way"]', { timeout: T });
    await track.waitForSelector('#timeline li[data-step="on_the_way"][data-done="true"]', { timeout: T });
    check(await track.getAttribute('#timeline li[data-step="delivered"]', 'data-done') === 'false', 'not delivered yet');
  });

  await step('the courier page shows a refused status change', async () => {
    await courier.click('button[data-status="picked_up"]');
    await courier.waitForSelector('#note[data-kind="error"][data-code="conflict"]', { timeout: T });
    check((await courier.textContent('#note')).includes('only move forward'), 'the refusal says why');
    // The browser logs the expected 409 itself; it is no page problem.
    await courier.waitForTimeout(100);
    for (let i = problems.length - 1; i >= 0; i--) {
      if (problems[i].startsWith('courier: console: Failed to load resource') && problems[i].includes('409')) problems.splice(i, 1);
    }
  });

  await step('the courier drives; the tracking page shows it moving', async () => {
    await courier.click('#drive');
    await track.waitForSelector('#courier[visibility="visible"]', { timeout: T });
    const where = () => track.evaluate(() => {
      const c = document.querySelector('#courier');
      return { t: c.getAttribute('transform'), lat: Number(c.dataset.lat) };
    });
    const first = await where();
    check(Math.abs(first.lat - START.lat) < 0.0005, `first point near the start: ${first.lat}`);
    await track.waitForFunction(() => document.querySelector('#distance').dataset.meters !== '', null, { timeout: T });
    await shot(track, 'track-1.png');
    await track.waitForFunction((lat) => Number(document.querySelector('#courier').dataset.lat) > lat, first.lat, { timeout: T });
    const second = await where();
    check(second.t !== first.t, `the marker moved on the map: ${first.t} -> ${second.t}`);
    await track.waitForFunction(() => document.querySelector('#eta').dataset.seconds !== '', null, { timeout: T });
    const meters = Number(await track.getAttribute('#distance', 'data-meters'));
    check(meters > 400 && meters < 600, `distance left ${meters} m`);
    const pathPoints = (await track.getAttribute('#path', 'points')).trim().split(/\s+/).length;
    check(pathPoints >= 2, `the path has ${pathPoints} points`);
    await shot(track, 'track-2.png');
    await shot(courier, 'courier-driving.png');
    await courier.click('#drive'); // stop
    check((await courier.textContent('#sent')).trim() !== '0', 'the courier page counts its points');
  });

  await step('no page errors', async () => {
    check(problems.length === 0, problems.join('\n'));
  });
} catch {
  ok = false;
  for (const { name, page } of pages) {
    await page.screenshot({ path: join(artifacts, `failure-${name}.png`), fullPage: true }).catch(() => {});
  }
  if (problems.length) console.log(`page problems:\n  ${problems.join('\n  ')}`);
} finally {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);

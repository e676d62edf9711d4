// The browser end-to-end flow of LiveHub's web pages, in headless Chromium
// driven by playwright-core (Debian's /usr/bin/chromium; no browser is
// downloaded). internal/e2e/browser_test.go starts a livehub node with -dev
// and runs this script with:
//
//   LIVEHUB_HTTP      http://127.0.0.1:PORT
//   HOST_TOKEN        a token with the host role, user host-1 (the index's demo host)
//   VIEWER_TOKENS     three buyer tokens, comma-separated
//   SHORT_TOKEN       a buyer token that expires in about 30 s
//   EXPIRED_TOKEN     an already expired token of the same buyer
//   ARTIFACTS_DIR     where screenshots go
//   CHROMIUM          the browser binary (default /usr/bin/chromium)
//
// The play: the index page mints demo tokens (and mints nothing on a node
// without development mode); the host console opens from it, starts a
// stream, pins a product and a message with a voucher code and launches a
// sale of 3 units (limit 2 per buyer). Viewer 1 buys 2 in one order, viewer
// 2 buys the last unit with the keyboard alone while viewer 3's connection
// is down, viewer 3 reconnects, recovers and sees the sale sold out without
// its layout moving; every order turns paid through the buyer's user:#
// channel; the host page shows 2 orders, 3 units and the revenue. The host
// moderates the chat: deletes a line (gone for every viewer), mutes viewer 1
// (its next line is refused), masks a word, turns slow mode on and off, bans
// and unbans. A page whose token nears expiry refreshes it over its socket,
// and one that reconnects with an expired token gets a new one. Then the
// host hands viewer 1's paid order to a courier; the courier page moves it on
// the way and drives, and viewer 1's tracking page shows the timeline and the
// courier moving on its map. It prints "browser: N passed, M failed" and
// exits 1 on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.LIVEHUB_HTTP;
const hostToken = process.env.HOST_TOKEN;
const viewerTokens = (process.env.VIEWER_TOKENS || '').split(',').filter(Boolean);
const shortToken = process.env.SHORT_TOKEN;
const expiredToken = process.env.EXPIRED_TOKEN;
const artifacts = process.env.ARTIFACTS_DIR || join(process.cwd(), 'artifacts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!base || !hostToken || viewerTokens.length < 3 || !shortToken || !expiredToken) {
  console.error('set LIVEHUB_HTTP, HOST_TOKEN, VIEWER_TOKENS (3 tokens), SHORT_TOKEN and EXPIRED_TOKEN');
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

/** A JWT's claims, unverified. */
function claimsOf(token) {
  try { return JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString()); } catch { return null; }
}

const userDataDir = mkdtempSync(join(tmpdir(), 'livehub-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});

const pages = [];
function watch(name, page) {
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: console: ${m.text()}`); });
  pages.push({ name, page });
  return page;
}
async function open(name, url, viewport) {
  const page = watch(name, await context.newPage());
  if (viewport) await page.setViewportSize(viewport);
  await page.goto(url);
  return page;
}
// The browser logs an expected HTTP refusal itself; it is no page problem.
function forgive(name, status) {
  for (let i = problems.length - 1; i >= 0; i--) {
    if (problems[i].startsWith(`${name}: console: Failed to load resource`) && problems[i].includes(String(status))) problems.splice(i, 1);
  }
}
const shot = (page, file) => page.screenshot({ path: join(artifacts, file), fullPage: true });
const connected = (page) => page.waitForSelector('#conn[data-state="connected"]', { timeout: T });
const roomActive = (page) => page.waitForFunction(() => window.livehub.subs.get(`live:${new URLSearchParams(location.search).get('stream')}`)?.active, null, { timeout: T });
const box = async (page, sel) => { const b = await page.locator(sel).boundingBox(); return b && `${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`; };
const fits360 = async (page, what) => {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check(w <= 360, `${what} is ${w}px wide at a 360px viewport`);
};
const chatHas = (page, text) => page.evaluate((t) => [...document.querySelectorAll('#chat li')].some((li) => li.textContent.includes(t)), text);
const waitChat = (page, text) => page.waitForFunction((t) => [...document.querySelectorAll('#chat li')].some((li) => li.textContent.includes(t)), text, { timeout: T });
const waitNoChat = (page, text) => page.waitForFunction((t) => ![...document.querySelectorAll('#chat li')].some((li) => li.textContent.includes(t)), text, { timeout: T });
async function say(page, text) {
  await page.fill('#chat-text', text);
  await page.press('#chat-text', 'Enter');
}
const clearNote = (page) => page.evaluate(() => { const n = document.querySelector('#chat-note'); n.textContent = ''; n.dataset.kind = ''; n.dataset.code = ''; });
async function sayOK(page, text) {
  await clearNote(page);
  await say(page, text);
  await page.waitForFunction(() => document.querySelector('#chat-text').value === '' || document.querySelector('#chat-note').dataset.kind === 'error', null, { timeout: T });
  check(await page.getAttribute('#chat-note', 'data-kind') !== 'error', `chat refused: ${await page.textContent('#chat-note')}`);
}
async function sayRefused(page, text, code, words) {
  await clearNote(page);
  await say(page, text);
  await page.waitForSelector('#chat-note[data-kind="error"]', { timeout: T });
  const got = { code: await page.getAttribute('#chat-note', 'data-code'), text: await page.textContent('#chat-note') };
  check(got.code === String(code), `refusal code ${got.code} (${got.text}), want ${code}`);
  check(got.text.includes(words), `the refusal says "${got.text}", want it to mention "${words}"`);
  check(await page.inputValue('#chat-text') === text, 'a refused line stays in the input');
}

let ok = true;
try {
  let streamID = '';
  const small = { width: 360, height: 740 };

  const index = await open('index', `${base}/index.html`);
  await step('the index page mints demo tokens in development mode', async () => {
    await index.waitForSelector('body[data-dev="true"]', { timeout: T });
    check((await index.textContent('#dev-note')).includes('Development mode'), 'the page says development mode');
    check(await index.isEnabled('#demo-tokens'), 'the demo token button is enabled');
    await index.waitForFunction(() => document.querySelector('#t-host').value !== '' && document.querySelector('#t-viewer').value !== '', null, { timeout: T });
    const host = claimsOf(await index.inputValue('#t-host'));
    const viewer = claimsOf(await index.inputValue('#t-viewer'));
    check(host && host.sub === 'host-1' && (host.roles || []).includes('host'), `host token claims ${JSON.stringify(host)}`);
    check(viewer && /^viewer-/.test(viewer.sub) && (viewer.roles || []).includes('customer'), `viewer token claims ${JSON.stringify(viewer)}`);
    check((await index.textContent('#token-note')).includes(`Host: host-1 · viewer: ${viewer.sub}`), 'the page names the saved users');
    // Forget and mint again: a new viewer, the same demo host.
    const oldViewer = await index.inputValue('#t-viewer');
    await index.click('#clear-tokens');
    await index.waitForFunction(() => document.querySelector('#t-host').value === '', null, { timeout: T });
    check((await index.textContent('#token-note')).includes('No tokens saved'), 'forgotten');
    await index.click('#demo-tokens');
    await index.waitForFunction((old) => { const v = document.querySelector('#t-viewer').value; return v !== '' && v !== old; }, oldViewer, { timeout: T });
    check(claimsOf(await index.inputValue('#t-host')).sub === 'host-1', 'the demo host again');
    await shot(index, 'index.png');
  });

  await step('the index page on a node without development mode mints nothing', async () => {
    const prod = watch('index-prod', await context.newPage());
    await prod.route('**/dev/token', (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: '404 page not found' }));
    await prod.goto(`${base}/index.html`);
    await prod.waitForSelector('body[data-dev="false"]', { timeout: T });
    check(await prod.isDisabled('#demo-tokens'), 'the demo token button is disabled');
    check((await prod.textContent('#dev-note')).includes('does not mint tokens'), 'the page says it mints none');
    check(claimsOf(await prod.inputValue('#t-host'))?.sub === 'host-1', 'the tokens saved before are kept');
    await prod.close();
    pages.splice(pages.findIndex((p) => p.page === prod), 1);
    forgive('index-prod', 404);
  });

  await step('the index page fits 360px', async () => {
    await index.setViewportSize(small);
    await fits360(index, 'the index page');
    await index.setViewportSize({ width: 1280, height: 900 });
  });

  let host;
  await step('the host console opens from the index with its demo token and starts a stream', async () => {
    const [popup] = await Promise.all([context.waitForEvent('page', { timeout: T }), index.click('#open-host')]);
    host = watch('host', popup);
    await host.waitForLoadState();
    await connected(host);
    check((await host.textContent('#who')).includes('Sari Host'), `signed in as ${await host.textContent('#who')}`);
    await host.fill('#stream-title', 'Browser e2e: sneakers');
    await host.click('#start-form button[type=submit]');
    await host.waitForSelector('#stream-card:not([hidden])', { timeout: T });
    streamID = (await host.textContent('#stream-id')).trim();
    check(/^str_[0-9a-f]{24}$/.test(streamID), `stream id ${streamID}`);
    check(new URL(host.url()).searchParams.get('stream') === streamID, 'the address names the stream');
    await host.waitForFunction((id) => window.livehub.subs.get(`live:${id}`)?.active && window.livehub.subs.get(`studio:${id}`)?.active, streamID, { timeout: T });
  });

  await step('the index opens a viewer tab as a new buyer', async () => {
    await index.fill('#v-stream', streamID);
    const [popup] = await Promise.all([context.waitForEvent('page', { timeout: T }), index.click('#open-viewer')]);
    const v = watch('index-viewer', popup);
    await v.waitForURL(/\/viewer\.html\?stream=/, { timeout: T });
    await connected(v);
    await roomActive(v);
    const who = claimsOf(await v.evaluate(() => window.livehub.token));
    const saved = claimsOf(await index.inputValue('#t-viewer'));
    check(who && /^viewer-/.test(who.sub) && who.sub !== saved.sub, `the new tab's buyer is ${who && who.sub}, the saved viewer ${saved.sub}`);
    check((await v.textContent('#title')).includes('Browser e2e'), 'the tab shows the stream');
    check((await index.textContent('#viewer-note')).includes('as a new buyer'), 'the index says what it opened');
    await v.close();
    pages.splice(pages.findIndex((x) => x.page === v), 1);
  });

  // A buyer whose token expires in ~30 s: it must be refreshed over the socket.
  let shortPage;
  let shortStart;
  await step('a page whose token expires soon connects', async () => {
    shortPage = await open('short', `${base}/viewer.html?stream=${streamID}#token=${shortToken}`, small);
    await connected(shortPage);
    shortStart = await shortPage.evaluate(() => ({ client: window.livehub.client, expiresAt: window.livehub.expiresAt }));
    check(shortStart.client !== '', 'a connection id');
    check(shortStart.expiresAt > 0, 'the hub knows the token expires');
  });

  await step('the host pins a product and a message with a voucher code', async () => {
    await host.fill('#p-name', 'Air Max 42');
    await host.fill('#p-price', String(PRICE));
    await host.fill('#p-stock', '3');
    await host.click('#pin-product-form button[type=submit]');
    await host.waitForSelector('#pinned-product-now[data-pinned="true"]', { timeout: T });
    check((await host.textContent('#pinned-product-now')).includes('Air Max 42'), 'the console shows the pinned product');
    check(await host.isEnabled('#unpin-product'), 'unpin is offered');
    await host.fill('#m-text', 'Flash sale now!');
    await host.fill('#m-voucher', 'live10');
    await host.click('#pin-message-form button[type=submit]');
    await host.waitForSelector('#pinned-message-now[data-pinned="true"]', { timeout: T });
    check((await host.textContent('#pinned-message-now')).includes('Voucher: LIVE10'), 'the pinned message carries the voucher');
  });

  const viewers = [];
  await step('three viewers open the room at 360px and see the pinned product and message', async () => {
    for (let i = 0; i < 3; i++) {
      viewers.push(await open(`viewer${i + 1}`, `${base}/viewer.html?stream=${streamID}#token=${viewerTokens[i]}`, small));
    }
    for (const v of viewers) {
      await connected(v);
      await roomActive(v);
      await v.waitForSelector('#pinned-product:not([hidden])', { timeout: T });
      check((await v.textContent('#pp-name')).trim() === 'Air Max 42', 'pinned product name');
      check((await v.textContent('#pp-stock')).includes('3 in stock'), 'pinned product stock');
      await v.waitForSelector('#pinned-message:not([hidden])', { timeout: T });
      check((await v.textContent('#pm-code')).trim() === 'LIVE10', 'the voucher code is shown apart');
      check((await v.textContent('#pm-text')).includes('Flash sale now!'), 'the pinned message text');
    }
    const title = await viewers[0].textContent('#title');
    check(title.includes('Browser e2e'), `title ${title}`);
  });

  await step('the host unpins the product and the viewers see it go', async () => {
    await host.click('#unpin-product');
    await host.waitForSelector('#pinned-product-now[data-pinned="false"]', { timeout: T });
    for (const v of viewers) await v.waitForSelector('#pinned-product[hidden]', { state: 'attached', timeout: T });
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
      check(await v.locator('#qty option').count() === 2, 'the quantity goes up to the per-buyer limit');
    }
  });

  await step('the viewer and host pages fit 360px without horizontal scrolling', async () => {
    await fits360(viewers[0], 'the viewer page');
    await host.setViewportSize(small);
    await fits360(host, 'the host console');
    await shot(host, 'host-360.png');
    await host.setViewportSize({ width: 1280, height: 900 });
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
    check(await v.locator('#orders li').count() === before + 1, 'one purchase makes one order');
    const li = v.locator('#orders li').first();
    check((await li.getAttribute('data-status')) === 'pending_payment', 'a new order is pending payment');
    check((await li.getAttribute('data-quantity')) === String(n), `the order is for ${await li.getAttribute('data-quantity')} units, want ${n}`);
    check((await li.getAttribute('data-amount')) === String(n * PRICE), `the order amounts to ${await li.getAttribute('data-amount')}`);
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

  await step('viewer 1 buys 2 units in one order and pays; the order turns paid via user:#', async () => {
    await buyAndPay(viewers[0], 2, false);
    for (const v of viewers) await v.waitForSelector('#stock-left[data-left="1"]', { timeout: T });
    await viewers[0].waitForSelector('#buy[data-limit="true"]', { timeout: T });
    check(await viewers[0].isDisabled('#buy'), 'viewer 1 reached its limit');
    check((await viewers[0].textContent('#buy')).trim() === 'Limit reached', 'the button says so');
    check(await viewers[1].isEnabled('#buy'), 'viewer 2 may still buy');
    await shot(viewers[0], 'viewer1-paid.png');
  });

  let v3Layout;
  const layout = async (v) => ({ buy: await box(v, '#buy'), bar: await box(v, '#stock-bar'), chat: await box(v, '#chat-form') });
  await step('viewer 3 loses its connection and shows "reconnecting"', async () => {
    const v3 = viewers[2];
    v3Layout = await layout(v3);
    await v3.evaluate(() => { window.livehub.opts.minDelay = 4000; window.livehub.ws.close(); });
    await v3.waitForSelector('#conn[data-state="reconnecting"]', { timeout: T });
    check(await v3.isVisible('#conn-banner'), 'the reconnecting banner shows');
    check((await v3.textContent('#conn')).includes('Reconnecting'), 'the badge says Reconnecting');
    const now = await layout(v3);
    check(now.buy === v3Layout.buy && now.bar === v3Layout.bar, `the banner moved the sale: ${JSON.stringify(v3Layout)} -> ${JSON.stringify(now)}`);
    await shot(v3, 'viewer3-reconnecting.png');
  });

  await step('viewer 2 buys the last unit with the keyboard and pays', async () => {
    await buyAndPay(viewers[1], 1, true);
    await viewers[1].waitForSelector('#stock-left[data-left="0"]', { timeout: T });
    await shot(viewers[1], 'viewer2-paid.png');
  });

  await step('viewer 3 reconnects, recovers and sees the sale sold out; nothing moved', async () => {
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
    const now = await layout(v3);
    check(JSON.stringify(now) === JSON.stringify(v3Layout), `the layout moved when the stock updated: ${JSON.stringify(v3Layout)} -> ${JSON.stringify(now)}`);
    await shot(v3, 'viewer3-sold-out.png');
  });

  await step('the host page shows 2 paid orders, 3 units and the revenue', async () => {
    await host.waitForFunction(() => document.querySelectorAll('#orders tr[data-status="paid"]').length === 2, null, { timeout: T });
    check((await host.locator('#orders tr').count()) === 2, 'exactly 2 order rows');
    await host.waitForSelector(`#revenue[data-amount="${3 * PRICE}"]`, { timeout: T });
    check((await host.textContent('#n-orders')).trim() === '2', 'orders figure is 2');
    check((await host.textContent('#n-units')).trim() === '3', 'units figure is 3');
    const qty = await host.$$eval('#orders tr', (rows) => rows.map((r) => r.children[1].textContent.trim()).sort().join(','));
    check(qty === '1,2', `order quantities ${qty}`);
    await host.waitForSelector('#cur-left[data-left="0"]', { timeout: T });
    check((await host.textContent('#cur-sold')).trim() === '3 paid', 'the sale shows 3 paid units');
    await shot(host, 'host-orders.png');
  });

  await step('hearts go through likes.add and come back as likes.count', async () => {
    const v = viewers[0];
    for (let i = 0; i < 3; i++) await v.click('#heart');
    await v.waitForFunction(() => Number(document.querySelector('#likes').textContent) >= 3, null, { timeout: T });
    await host.waitForFunction(() => Number(document.querySelector('#h-likes').textContent) >= 3, null, { timeout: T });
  });

  await step('chat reaches the other viewers and the host without moving the page', async () => {
    const before = await layout(viewers[2]);
    await sayOK(viewers[1], 'halo kak, dapat!');
    await sayOK(viewers[0], 'halo semua');
    for (const p of [viewers[0], viewers[2], host]) await waitChat(p, 'halo kak, dapat!');
    for (const p of [viewers[1], viewers[2], host]) await waitChat(p, 'halo semua');
    const after = await layout(viewers[2]);
    check(JSON.stringify(after) === JSON.stringify(before), `the layout moved when chat arrived: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    await shot(viewers[0], 'viewer1-chat.png');
  });

  await step('the host deletes a chat line; every viewer sees it removed', async () => {
    const bad = 'beli di toko sebelah lebih murah';
    await sayOK(viewers[0], bad);
    for (const p of [...viewers, host]) await waitChat(p, bad);
    await host.locator('#chat li', { hasText: bad }).locator('button[data-act="delete"]').click();
    await host.waitForSelector('#mod-note[data-kind="ok"]', { timeout: T });
    for (const p of [...viewers, host]) await waitNoChat(p, bad);
    for (const p of viewers) check(await chatHas(p, 'halo semua'), 'the other lines stay');
  });

  await step('the host mutes viewer 1 for 5 minutes; its next line is refused', async () => {
    await host.selectOption('#mute-for', '300');
    await host.locator('#chat li', { hasText: 'halo semua' }).locator('button[data-act="mute"]').click();
    await host.waitForSelector('#mutes li[data-user="buyer-ana"]', { timeout: T });
    check((await host.textContent('#mod-note')).includes('5 minutes'), `the console says ${await host.textContent('#mod-note')}`);
    await sayRefused(viewers[0], 'tes tes masih bisa?', 103, 'muted');
    // A later line from viewer 2 arrives; the refused one never did.
    await sayOK(viewers[1], 'sesudah mute');
    await waitChat(viewers[2], 'sesudah mute');
    check(!(await chatHas(viewers[2], 'tes tes masih bisa?')), 'the muted line reached viewer 3');
    check(!(await chatHas(host, 'tes tes masih bisa?')), 'the muted line reached the host');
  });

  await step('muted words are masked in the room', async () => {
    await host.fill('#words', 'tipu');
    await host.selectOption('#words-mode', 'mask');
    await host.click('#words-form button[type=submit]');
    await host.waitForSelector('#mod-note[data-kind="ok"]', { timeout: T });
    await sayOK(viewers[1], 'ini tipu ya');
    await waitChat(viewers[2], 'ini **** ya');
    check(!(await chatHas(viewers[2], 'tipu')), 'the word is not shown');
  });

  await step('slow mode shows in the room and refuses a quick second line', async () => {
    await host.fill('#slow-seconds', '30');
    await host.click('#slow-form button[type=submit]');
    await host.waitForSelector('#slow-now[data-seconds="30"]', { timeout: T });
    await viewers[2].waitForSelector('#slow-note:not([hidden])', { timeout: T });
    check((await viewers[2].textContent('#slow-note')).includes('30'), 'the room shows the interval');
    await sayOK(viewers[2], 'pertama');
    await sayRefused(viewers[2], 'kedua', 111, 'slow mode');
    await viewers[2].fill('#chat-text', '');
    await host.fill('#slow-seconds', '0');
    await host.click('#slow-form button[type=submit]');
    await viewers[2].waitForSelector('#slow-note[hidden]', { state: 'attached', timeout: T });
  });

  await step('the host bans viewer 3 by user id and unbans it from the list', async () => {
    await host.fill('#mod-user', 'buyer-citra');
    await host.click('#mod-ban');
    await host.waitForSelector('#bans li[data-user="buyer-citra"]', { timeout: T });
    await sayRefused(viewers[2], 'halo?', 103, 'banned');
    await host.locator('#bans li[data-user="buyer-citra"] button').click();
    await host.waitForFunction(() => document.querySelectorAll('#bans li').length === 0, null, { timeout: T });
    await host.fill('#mod-user', 'buyer-budi');
    await host.click('#mod-appoint');
    await host.waitForSelector('#moderators li[data-user="buyer-budi"]', { timeout: T });
  });

  await step('the host unmutes viewer 1 from the list; it chats again', async () => {
    await host.locator('#mutes li[data-user="buyer-ana"] button').click();
    await host.waitForFunction(() => document.querySelectorAll('#mutes li').length === 0, null, { timeout: T });
    await viewers[0].fill('#chat-text', '');
    await sayOK(viewers[0], 'makasih kak');
    await waitChat(viewers[1], 'makasih kak');
    await shot(host, 'host-moderation.png');
  });

  await step('the host unpins the message; the viewers see it go', async () => {
    await host.click('#unpin-message');
    await host.waitForSelector('#pinned-message-now[data-pinned="false"]', { timeout: T });
    for (const v of viewers) await v.waitForSelector('#pinned-message[hidden]', { state: 'attached', timeout: T });
  });

  await step('the short-lived token is refreshed over the same connection', async () => {
    await shortPage.waitForFunction(() => window.livehub.refreshes >= 1, null, { timeout: 45000 });
    const now = await shortPage.evaluate(() => ({ client: window.livehub.client, expiresAt: window.livehub.expiresAt, state: window.livehub.state, token: window.livehub.token }));
    check(now.state === 'connected', `state ${now.state}`);
    check(now.client === shortStart.client, `the page reconnected (${shortStart.client} -> ${now.client}) instead of refreshing`);
    check(now.expiresAt > shortStart.expiresAt, 'the connection expires later than the first token');
    check(now.token !== shortToken && claimsOf(now.token).sub === claimsOf(shortToken).sub, 'a new token of the same user');
  });

  await step('a reconnect with an expired token gets a new one from the page\'s token source', async () => {
    const before = await shortPage.evaluate(() => window.livehub.client);
    await shortPage.evaluate((t) => { window.livehub.token = t; window.livehub.ws.close(); }, expiredToken);
    await shortPage.waitForFunction((c) => window.livehub.state === 'connected' && window.livehub.client !== c, before, { timeout: T });
    const tok = await shortPage.evaluate(() => window.livehub.token);
    check(tok !== expiredToken, 'the hub kept the expired token');
    check(claimsOf(tok).exp * 1000 > Date.now(), 'the new token is valid');
  });

  await step('a page opened with an expired token signs in with a fresh one', async () => {
    const p = await open('expired', `${base}/viewer.html?stream=${streamID}#token=${expiredToken}`, small);
    await connected(p);
    await roomActive(p);
    check(claimsOf(await p.evaluate(() => window.livehub.token)).sub === claimsOf(expiredToken).sub, 'the same user');
    await p.waitForSelector('#sale[data-state="sold_out"]', { timeout: T });
    await p.close();
    pages.splice(pages.findIndex((x) => x.page === p), 1);
  });

  // --- delivery: the host hands viewer 1's paid order to a courier ---
  const START = { lat: -6.2, lng: 106.82 };
  const ADDRESS = { lat: START.lat + 600 / 110540, lng: START.lng, text: 'Jl. Kebon Sirih 12, Jakarta' }; // ~600 m north
  let orderID = '';
  let courierToken = '';
  await step('the host assigns a courier to viewer 1\'s paid order', async () => {
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
    await fits360(track, 'the tracking page');
    await fits360(courier, 'the courier page');
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
    await courier.waitForTimeout(100);
    forgive('courier', 409);
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

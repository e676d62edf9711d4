// viewer.html?stream=ID: the live room of a stream as a buyer sees it.
import { Hub, wsURL } from './hub.js';
import { $, el, api, pageToken, tokenSource, claims, connectionBadge, rupiah, clock, roomEvent, uuid, say } from './ui.js';

const params = new URLSearchParams(location.search);
const streamID = params.get('stream') || '';
const guest = 'viewer-' + Math.random().toString(36).slice(2, 8);
const token = await pageToken('viewer', { sub: guest, name: 'Guest ' + guest.slice(7), roles: ['customer'] });
const me = token ? claims(token) : null;
$('#who').textContent = me ? (me.name || me.sub) : 'nobody (read only: get a token on the start page)';

const hub = new Hub(wsURL(), { token, getToken: tokenSource('viewer', () => hub.token) });
const tok = () => hub.token; // the current token, refreshed with the connection's
connectionBadge(hub, $('#conn'));
window.livehub = hub; // for the console and the browser test
hub.addEventListener('state', () => { $('#conn-banner').hidden = hub.state !== 'reconnecting'; });

let buying = false;    // a checkout in flight
let sale = null;          // the current flash sale, as the events describe it
const orders = new Map(); // order id -> {order, li}

if (!streamID) {
  say($('#buy-note'), 'Open this page with ?stream=<stream id> (the host page links to it).', 'error');
} else {
  if (token) {
    api(tok(), 'GET', `/v1/streams/${encodeURIComponent(streamID)}`).then((s) => {
      $('#title').textContent = s.title;
      document.title = `${s.title} · LiveHub`;
      if (s.state === 'ended') say($('#chat-note'), 'This stream has ended.');
    }).catch((e) => say($('#buy-note'), e.message, 'error'));
    loadMyOrders();
  }
  loadRoom();
  hub.subscribe(`live:${streamID}`, onRoom, { backlog: 100 });
  hub.onPersonal((_ch, ev) => onMine(ev));
  hub.addEventListener('suberror', (e) => say($('#buy-note'), `room: ${e.detail.error.message}`, 'error'));
  // A reconnect that could not recover a channel: read its state again over
  // HTTP (the room's history is reloaded by the hub itself).
  hub.addEventListener('subscribed', (e) => {
    const { channel, recovered, wasRecovering, personal } = e.detail;
    if (!wasRecovering || recovered) return;
    if (personal) loadMyOrders();
    else if (channel === `live:${streamID}`) loadRoom();
  });
  hub.connect();
}

// The room's pinned product and message, slow mode and likes (no token needed).
async function loadRoom() {
  try {
    const r = await api('', 'GET', `/v1/streams/${encodeURIComponent(streamID)}/room`);
    showPinnedProduct(r.pinned_product || null);
    showPinnedMessage(r.pinned_message || null);
    showSlow(r.slow_mode_seconds || 0);
    if (r.likes != null) $('#likes').textContent = r.likes;
  } catch (e) {
    console.warn('room', e);
  }
}

// The buyer's orders in this stream, for a page opened late or reloaded.
async function loadMyOrders() {
  try {
    const r = await api(tok(), 'GET', '/v1/orders?mine&limit=100');
    for (const o of (r.orders || []).slice().reverse()) if (o.stream_id === streamID) upsertOrder(o, 'http');
  } catch (e) {
    console.warn('orders', e);
  }
}

// --- room events ---
function onRoom(ev) {
  if (!ev || !ev.type) return;
  if (roomEvent(ev, { slow: showSlow, product: showPinnedProduct, message: showPinnedMessage })) return;
  const d = ev.data || {};
  switch (ev.type) {
    case 'flash_sale.scheduled':
    case 'flash_sale.started':
    case 'flash_sale.ended':
      if (sale && sale.id !== d.id && ev.type === 'flash_sale.ended') return; // an older sale
      sale = withNewestStock(sale, d);
      renderSale();
      break;
    case 'flash_sale.stock':
    case 'flash_sale.sold_out':
      if (!sale || sale.id !== d.flash_sale_id) return;
      // Nodes publish stock events independently, so they may arrive out
      // of order: apply one only when its version is above the one shown.
      if (!newerStock(d, sale)) return;
      sale.stock_left = d.stock_left;
      sale.stock_version = d.stock_version;
      sale.sold = d.sold;
      sale.quantity = d.quantity;
      if (sale.state !== 'ended' && sale.state !== 'scheduled') sale.state = d.stock_left > 0 ? 'live' : 'sold_out';
      renderSale();
      break;
    case 'order.placed': {
      // Purchases of a sale within a second come folded into one event.
      const orders = d.orders || 1;
      const units = `${d.quantity} ${d.quantity === 1 ? 'unit' : 'units'}`;
      chatLine(orders > 1 ? `${orders} people bought ${units} (the latest: ${d.buyer})` : `${d.buyer} bought ${units}`, 'system');
      break;
    }
    case 'chat.message':
      chatLine(d.text, d.role === 'host' ? 'host' : '', d.name || d.user_id, d.id);
      break;
    case 'likes.count':
      $('#likes').textContent = d.total;
      break;
    case 'viewers.count':
      $('#viewer-count').textContent = d.count;
      break;
    case 'stream.ended':
      chatLine('The stream has ended.', 'system');
      break;
  }
}

// newerStock reports whether figures a (an event or a snapshot) carry a
// higher stock_version than b, the ones shown.
function newerStock(a, b) {
  return (a.stock_version ?? 0) > (b.stock_version ?? -1);
}

// withNewestStock is the sale snapshot s, keeping the stock of prev (the same
// sale as shown) when prev's stock_version is the higher.
function withNewestStock(prev, s) {
  const next = { ...s };
  if (prev && prev.id === s.id && newerStock(prev, s)) {
    next.stock_left = prev.stock_left;
    next.stock_version = prev.stock_version;
    next.sold = prev.sold;
  }
  return next;
}

function phase() {
  if (!sale) return 'none';
  const now = Date.now();
  if (sale.state === 'ended' || now >= Date.parse(sale.ends_at)) return 'ended';
  if (now < Date.parse(sale.starts_at)) return 'scheduled';
  return sale.stock_left > 0 ? 'live' : 'sold_out';
}

function renderSale() {
  if (!sale) return;
  const p = phase();
  $('#sale').dataset.state = p;
  $('#sale-name').textContent = sale.product ? sale.product.name : 'Flash sale';
  $('#sale-price').textContent = rupiah(sale.price);
  const pill = $('#sale-state');
  pill.dataset.state = p;
  pill.textContent = { scheduled: 'starting soon', live: 'live', sold_out: 'sold out', ended: 'ended' }[p];
  const q = sale.quantity || 0;
  const left = Math.max(0, sale.stock_left || 0);
  $('#stock-fill').style.transform = `scaleX(${q ? left / q : 0})`;
  const bar = $('#stock-bar');
  bar.setAttribute('aria-valuemax', q);
  bar.setAttribute('aria-valuenow', left);
  $('#stock-left').textContent = `${left} of ${q} left`;
  $('#stock-left').dataset.left = left;
  $('#stock-limit').textContent = `max ${sale.per_user_limit} each`;
  const qty = $('#qty');
  const allowed = (sale.per_user_limit || 1) - heldUnits();
  const max = Math.max(1, Math.min(allowed, left || 1, 10));
  if (qty.options.length !== max) {
    const keep = Number(qty.value) || 1;
    qty.replaceChildren(...Array.from({ length: max }, (_, i) => el('option', { value: i + 1, text: String(i + 1) })));
    qty.value = String(Math.min(keep, max));
  }
  const buy = $('#buy');
  const limited = p === 'live' && allowed <= 0;
  buy.disabled = p !== 'live' || !token || buying || limited;
  buy.dataset.limit = String(limited);
  buy.textContent = { scheduled: 'Starts soon', live: buying ? 'Reserving…' : limited ? 'Limit reached' : 'Buy now', sold_out: 'Sold out', ended: 'Sale ended', none: 'Buy now' }[p];
  tick();
}

// Units this buyer holds in the current sale (pending and paid orders), which
// count against its per-buyer limit.
function heldUnits() {
  let n = 0;
  for (const { order } of orders.values()) {
    if (sale && order.flash_sale_id === sale.id && (order.status === 'pending_payment' || order.status === 'paid')) n += order.quantity;
  }
  return n;
}

function tick() {
  if (!sale) return;
  const p = phase();
  const now = Date.now();
  if (p === 'scheduled') {
    $('#countdown-label').textContent = 'starts in';
    $('#countdown').textContent = clock(Date.parse(sale.starts_at) - now);
  } else if (p === 'live' || p === 'sold_out') {
    $('#countdown-label').textContent = 'ends in';
    $('#countdown').textContent = clock(Date.parse(sale.ends_at) - now);
  } else {
    $('#countdown-label').textContent = '';
    $('#countdown').textContent = '0:00';
  }
  if ($('#sale').dataset.state !== p) renderSale();
}
setInterval(tick, 250);

// --- buying ---
$('#buy').addEventListener('click', async () => {
  if (!sale || buying) return;
  const quantity = Number($('#qty').value) || 1;
  const key = uuid(); // one purchase: retries reuse it
  buying = true;
  renderSale();
  say($('#buy-note'), 'Reserving…');
  try {
    let order;
    for (let attempt = 0; ; attempt++) {
      try {
        order = await api(tok(), 'POST', '/v1/checkout', { flash_sale_id: sale.id, quantity }, { 'Idempotency-Key': key });
        break;
      } catch (e) {
        // A network error, 503 or 429: the same key cannot buy twice, so retry.
        if (attempt < 2 && (!e.status || e.status === 503 || e.status === 429)) {
          const wait = e.status === 429 ? 1000 * Math.min(5, Number(e.retryAfter) || 1) : 600 * (attempt + 1);
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        throw e;
      }
    }
    upsertOrder(order, 'checkout');
    $('#buy-note').dataset.code = '';
    say($('#buy-note'), `Reserved ${order.quantity} for ${rupiah(order.amount)}: pay to confirm.`, 'ok');
  } catch (e) {
    const msg = {
      sold_out: 'Sold out: someone was faster.',
      per_user_limit: e.message,
      sale_not_started: 'The sale has not started yet.',
      sale_ended: 'The sale has ended.',
      rate_limited: 'Too many tries: wait a moment.',
    }[e.code] || e.message;
    say($('#buy-note'), msg, 'error');
    $('#buy-note').dataset.code = e.code || '';
  } finally {
    buying = false;
    renderSale();
  }
});

// --- my orders, kept current by user:#{me} ---
function onMine(ev) {
  if (!ev || !ev.type || !ev.type.startsWith('order.') || !ev.data || !ev.data.id) return;
  upsertOrder(ev.data, 'socket');
}

function upsertOrder(order, via) {
  let entry = orders.get(order.id);
  if (entry && rank(entry.order.status) > rank(order.status)) return; // status only moves forward
  if (entry && entry.order.status === order.status && entry.li.firstChild) { entry.order = order; return; }
  if (!entry) {
    const li = el('li', { 'data-order': order.id });
    entry = { order, li };
    orders.set(order.id, entry);
    $('#orders').prepend(li);
    $('#orders-empty').hidden = true;
  }
  const changed = entry.order.status !== order.status || !entry.li.firstChild;
  if (changed && via !== 'http' && entry.li.firstChild) {
    const what = { paid: 'Payment received: your order is paid.', expired: 'Your reservation ran out.', cancelled: 'The payment was cancelled.' }[order.status];
    if (what) say($('#buy-note'), what, order.status === 'paid' ? 'ok' : 'error');
  }
  entry.order = order;
  if (changed) entry.li.dataset.via = via;
  renderOrder(entry);
  if (sale) renderSale(); // the per-buyer limit counts this buyer's orders
}

function rank(s) { return { pending_payment: 0, paid: 1, expired: 1, cancelled: 1 }[s] ?? 0; }

function renderOrder({ order, li }) {
  li.dataset.status = order.status;
  li.dataset.quantity = order.quantity;
  li.dataset.amount = order.amount;
  const status = el('span', { class: 'status', 'data-status': order.status, text: order.status.replace('_', ' ') });
  const line = el('div', { class: 'row', style: 'justify-content:space-between' },
    el('span', { class: 'num', text: `${order.quantity} × · ${rupiah(order.amount)}` }), status);
  const parts = [line];
  if (order.status === 'pending_payment') {
    const pay = el('button', { type: 'button', text: `Pay ${rupiah(order.amount)} (simulated)` });
    pay.dataset.pay = order.id;
    pay.addEventListener('click', () => payOrder(order, pay));
    const until = order.reserved_until ? new Date(order.reserved_until).toLocaleTimeString() : '';
    parts.push(pay, el('span', { class: 'muted', text: until ? `Reserved until ${until}` : '' }));
  } else if (order.status === 'paid') {
    parts.push(el('span', { class: 'muted', text: 'Paid. Thank you!' }));
  }
  li.replaceChildren(...parts);
}

async function payOrder(order, button) {
  button.disabled = true;
  button.textContent = 'Waiting for payment confirmation…';
  try {
    // The answer says "paid" too, but the page waits for the order.paid
    // event on the personal channel: that is what a real gateway sends later.
    await api(tok(), 'POST', `/v1/payments/simulated/${encodeURIComponent(order.id)}/pay`);
    setTimeout(async () => { // no event in 5 s: read the order instead
      const entry = orders.get(order.id);
      if (entry && entry.order.status === 'pending_payment') {
        try { upsertOrder(await api(tok(), 'GET', `/v1/orders/${encodeURIComponent(order.id)}`), 'http'); } catch { /* keep */ }
      }
    }, 5000);
  } catch (e) {
    button.disabled = false;
    button.textContent = 'Pay (simulated)';
    say($('#buy-note'), e.message, 'error');
  }
}

// --- pinned product and message, slow mode ---
function showPinnedProduct(p) {
  const card = $('#pinned-product');
  card.hidden = !p;
  card.dataset.pinned = String(!!p);
  if (!p) return;
  $('#pp-name').textContent = p.product ? p.product.name : '';
  $('#pp-price').textContent = rupiah(p.price);
  $('#pp-stock').textContent = p.stock != null ? (p.stock > 0 ? `${p.stock} in stock` : 'out of stock') : '';
}

// A pinned message may end with "Voucher: CODE"; the code gets a copy button.
const VOUCHER = /\s*voucher:?\s+([A-Z0-9][A-Z0-9_-]{1,31})\s*$/i;
function showPinnedMessage(m) {
  const box = $('#pinned-message');
  box.hidden = !m;
  box.dataset.pinned = String(!!m);
  if (!m) return;
  const v = VOUCHER.exec(m.text || '');
  $('#pm-text').textContent = v ? m.text.slice(0, v.index) : m.text;
  $('#pm-voucher').hidden = !v;
  $('#pm-code').textContent = v ? v[1] : '';
}

$('#pm-copy').addEventListener('click', async () => {
  const code = $('#pm-code').textContent;
  try {
    await navigator.clipboard.writeText(code);
    say($('#chat-note'), `Voucher ${code} copied.`, 'ok');
  } catch {
    say($('#chat-note'), `Voucher code: ${code}`);
  }
});

function showSlow(seconds) {
  $('#slow-note').hidden = !seconds;
  $('#slow-note').textContent = seconds ? `Slow mode: one message every ${seconds} s.` : '';
}

// --- chat and hearts ---
function chatLine(text, kind = '', name = '', id = '') {
  const log = $('#chat');
  if (id && log.querySelector(`li[data-msg="${CSS.escape(id)}"]`)) return;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
  const li = el('li', { class: kind === 'system' ? 'system' : '' });
  if (id) li.dataset.msg = id;
  if (name) li.append(el('b', { text: name + (kind === 'host' ? ' (host)' : '') }));
  li.append(text);
  log.append(li);
  while (log.children.length > 200) log.firstChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

$('#chat-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#chat-text');
  const text = input.value.trim();
  if (!text) return;
  try {
    await hub.publish(`live:${streamID}`, { text });
    input.value = '';
    say($('#chat-note'), '');
    $('#chat-note').dataset.code = '';
  } catch (err) {
    say($('#chat-note'), err.message, 'error');
    $('#chat-note').dataset.code = err.code || '';
  }
});

let taps = 0;
$('#heart').addEventListener('click', () => {
  taps++;
  const h = el('span', { class: 'heart-float', text: '❤', 'aria-hidden': 'true' });
  $('#heart').closest('.card').append(h);
  setTimeout(() => h.remove(), 1300);
});
setInterval(async () => {
  if (!taps || hub.state !== 'connected') return;
  const count = Math.min(taps, 50);
  taps -= count;
  try {
    await hub.rpc('likes.add', { stream_id: streamID, count });
  } catch (err) {
    say($('#chat-note'), `hearts: ${err.message}`, 'error');
  }
}, 500);

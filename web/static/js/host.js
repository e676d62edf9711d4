// host.html: start a stream, launch flash sales, watch orders and revenue
// arrive on studio:{stream}, pin a product and a message in the room, and
// moderate its chat (live:{stream}) through /v1/streams/{id}/moderation.
// host.html?stream=ID reopens a stream.
import { Hub, wsURL } from './hub.js';
import { $, el, api, pageToken, tokenSource, claims, connectionBadge, rupiah, clock, roomEvent, say } from './ui.js';

const token = await pageToken('host', { sub: 'host-1', name: 'Sari Host', roles: ['host'] });
const me = token ? claims(token) : null;
$('#who').textContent = me ? `${me.name || me.sub} (${(me.roles || []).join(', ') || 'no roles'})` : 'nobody';
if (!token) say($('#start-note'), 'No host token: get one on the start page (index.html).', 'error');

const hub = new Hub(wsURL(), { token, getToken: tokenSource('host', () => hub.token) });
const tok = () => hub.token; // the current token, refreshed with the connection's
connectionBadge(hub, $('#conn'));
window.livehub = hub; // for the console and the browser test
hub.addEventListener('state', () => { $('#conn-banner').hidden = hub.state !== 'reconnecting'; });
hub.addEventListener('suberror', (e) => say($('#sale-note'), `${e.detail.channel}: ${e.detail.error.message}`, 'error'));
hub.connect();

let stream = null;
let sale = null;
const orders = new Map(); // id -> order

const existing = new URLSearchParams(location.search).get('stream');
if (existing && token) {
  api(tok(), 'GET', `/v1/streams/${encodeURIComponent(existing)}`).then(showStream)
    .catch((e) => say($('#start-note'), e.message, 'error'));
}

$('#start-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    showStream(await api(tok(), 'POST', '/v1/streams', { title: $('#stream-title').value.trim() }));
  } catch (err) {
    say($('#start-note'), err.message, 'error');
  }
});

function showStream(s) {
  stream = s;
  history.replaceState(null, '', `?stream=${encodeURIComponent(s.id)}`);
  $('#title').textContent = s.title;
  $('#start-card').hidden = true;
  for (const id of ['#stream-card', '#sale-card', '#orders-card', '#pin-card', '#chat-card', '#mod-card']) $(id).hidden = false;
  $('#stream-id').textContent = s.id;
  $('#stream-state').textContent = s.state;
  const link = new URL(`viewer.html?stream=${encodeURIComponent(s.id)}`, location.href).href;
  $('#viewer-link').href = link;
  $('#sale-form button').disabled = s.state !== 'live';
  hub.subscribe(`studio:${s.id}`, onStudio, { backlog: 100 });
  hub.subscribe(`live:${s.id}`, onRoom, { backlog: 100 });
  loadModeration();
}

// After a reconnect that could not recover the room, read its state again.
hub.addEventListener('subscribed', (e) => {
  if (stream && e.detail.wasRecovering && !e.detail.recovered) loadModeration();
});

$('#copy-link').addEventListener('click', async () => {
  try { await navigator.clipboard.writeText($('#viewer-link').href); say($('#sale-note'), 'Viewer link copied.', 'ok'); }
  catch { say($('#sale-note'), $('#viewer-link').href); }
});

$('#end-stream').addEventListener('click', async () => {
  if (!stream || !confirm('End the stream for everyone?')) return;
  try { showStreamState(await api(tok(), 'POST', `/v1/streams/${stream.id}/end`)); } catch (e) { say($('#sale-note'), e.message, 'error'); }
});

function showStreamState(s) {
  stream = s;
  $('#stream-state').textContent = s.state;
  $('#sale-form button').disabled = s.state !== 'live';
}

$('#sale-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const n = (id) => Number($(id).value);
  const body = {
    product: { id: 'sku-' + Date.now().toString(36), name: $('#f-name').value.trim() },
    price: n('#f-price'), quantity: n('#f-qty'), per_user_limit: n('#f-limit'),
    countdown_seconds: n('#f-countdown'), duration_seconds: n('#f-duration'),
  };
  try {
    const s = await api(tok(), 'POST', `/v1/streams/${stream.id}/flash-sales`, body);
    setSale(s);
    say($('#sale-note'), `Sale ${s.id} launched.`, 'ok');
  } catch (err) {
    say($('#sale-note'), err.problem && err.problem.field ? `${err.problem.field}: ${err.message}` : err.message, 'error');
  }
});

$('#end-sale').addEventListener('click', async () => {
  if (!sale) return;
  try { setSale(await api(tok(), 'POST', `/v1/flash-sales/${sale.id}/end`)); } catch (e) { say($('#sale-note'), e.message, 'error'); }
});

function onStudio(ev) {
  if (!ev || !ev.type) return;
  const d = ev.data || {};
  switch (ev.type) {
    case 'flash_sale.scheduled':
    case 'flash_sale.started':
    case 'flash_sale.ended':
      if (!sale || sale.id === d.id || ev.type !== 'flash_sale.ended') setSale(d);
      break;
    case 'flash_sale.stock':
      // Stock events of different nodes may arrive out of order: apply one
      // only when its stock_version is above the one shown.
      if (sale && sale.id === d.flash_sale_id && (d.stock_version ?? 0) > (sale.stock_version ?? -1)) {
        setSale({ ...sale, stock_left: d.stock_left, stock_version: d.stock_version, sold: d.sold });
      }
      break;
    case 'order.created':
    case 'order.paid':
    case 'order.expired':
    case 'order.cancelled':
      upsertOrder(d);
      break;
    case 'stream.ended':
      if (stream) showStreamState({ ...stream, state: 'ended' });
      break;
    default:
      if (ev.type.startsWith('moderation.')) scheduleModeration();
  }
}

function setSale(s) {
  const prev = sale && sale.id === s.id ? sale : null;
  sale = { ...(prev || {}), ...s };
  if (prev && (prev.stock_version ?? 0) > (s.stock_version ?? -1)) {
    // A snapshot older than the stock shown (an event read before the last
    // stock change): keep the newer stock.
    sale.stock_left = prev.stock_left;
    sale.stock_version = prev.stock_version;
  }
  $('#live-card').hidden = false;
  $('#cur-name').textContent = `${sale.product.name} · ${rupiah(sale.price)}`;
  const q = sale.quantity || 0;
  const left = Math.max(0, sale.stock_left ?? q);
  $('#cur-fill').style.transform = `scaleX(${q ? left / q : 0})`;
  $('#cur-bar').setAttribute('aria-valuemax', q);
  $('#cur-bar').setAttribute('aria-valuenow', left);
  $('#cur-left').textContent = `${left} of ${q} left`;
  $('#cur-left').dataset.left = left;
  // A payment sends no stock event: count the sale's paid units from the orders.
  let paidUnits = 0;
  for (const o of orders.values()) if (o.flash_sale_id === sale.id && o.status === 'paid') paidUnits += o.quantity;
  $('#cur-sold').textContent = `${Math.max(sale.sold || 0, paidUnits)} paid`;
  tick();
}

function phase() {
  if (!sale) return '';
  const now = Date.now();
  if (sale.state === 'ended' || now >= Date.parse(sale.ends_at)) return 'ended';
  if (now < Date.parse(sale.starts_at)) return 'scheduled';
  return (sale.stock_left ?? 1) > 0 ? 'live' : 'sold_out';
}

function tick() {
  if (!sale) return;
  const p = phase();
  const pill = $('#cur-state');
  pill.dataset.state = p;
  pill.textContent = { scheduled: 'starts in', live: 'live, ends in', sold_out: 'sold out', ended: 'ended' }[p];
  const now = Date.now();
  $('#cur-clock').textContent = p === 'scheduled' ? clock(Date.parse(sale.starts_at) - now)
    : p === 'live' || p === 'sold_out' ? clock(Date.parse(sale.ends_at) - now) : '';
  $('#end-sale').disabled = p === 'ended';
}
setInterval(tick, 250);

function upsertOrder(o) {
  const prev = orders.get(o.id);
  if (prev && prev.status !== 'pending_payment' && o.status === 'pending_payment') return;
  orders.set(o.id, o);
  let row = document.querySelector(`tr[data-order="${CSS.escape(o.id)}"]`);
  if (!row) {
    row = el('tr', { 'data-order': o.id });
    $('#orders').prepend(row);
  }
  row.dataset.status = o.status;
  row.replaceChildren(
    el('td', { text: o.buyer_name || o.buyer_id }),
    el('td', { class: 'num', text: String(o.quantity) }),
    el('td', { class: 'num', text: rupiah(o.amount) }),
    el('td', {}, el('span', { class: 'status', 'data-status': o.status, text: o.status.replace('_', ' ') })),
  );
  let units = 0; let paid = 0; let pending = 0;
  for (const x of orders.values()) {
    if (x.status === 'paid') { paid += x.amount; units += x.quantity; }
    if (x.status === 'pending_payment') { pending += x.amount; units += x.quantity; }
  }
  $('#n-orders').textContent = orders.size;
  $('#n-units').textContent = units;
  $('#revenue').textContent = rupiah(paid);
  $('#revenue').dataset.amount = paid;
  $('#pending').textContent = rupiah(pending);
  if (sale) setSale(sale);
}

// --- the room: chat, pinned product and message, viewers and hearts ---
function onRoom(ev) {
  if (!ev || !ev.type) return;
  if (roomEvent(ev, { slow: showSlow, product: showPinnedProduct, message: showPinnedMessage })) return;
  const d = ev.data || {};
  switch (ev.type) {
    case 'chat.message':
      chatLine(d);
      break;
    case 'viewers.count':
      $('#h-viewers').textContent = d.count;
      break;
    case 'likes.count':
      $('#h-likes').textContent = d.total;
      break;
  }
}

function chatLine(m) {
  const log = $('#chat');
  if (!m.id || log.querySelector(`li[data-msg="${CSS.escape(m.id)}"]`)) return;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
  const who = m.name || m.user_id;
  const li = el('li', { 'data-msg': m.id, 'data-user': m.user_id || '' });
  li.append(el('b', { text: who + (m.role === 'host' ? ' (host)' : m.role === 'moderator' ? ' (mod)' : '') }), el('span', { class: 'text', text: m.text }));
  const actions = el('span', { class: 'actions' },
    el('button', { type: 'button', class: 'small secondary', 'data-act': 'delete', text: 'Delete', 'aria-label': `Delete the message of ${who}` }));
  if (m.role === 'viewer' && m.user_id) {
    actions.append(
      el('button', { type: 'button', class: 'small secondary', 'data-act': 'mute', text: 'Mute', 'aria-label': `Mute ${who}` }),
      el('button', { type: 'button', class: 'small secondary', 'data-act': 'ban', text: 'Ban', 'aria-label': `Ban ${who}` }));
  }
  li.append(actions);
  log.append(li);
  while (log.children.length > 200) log.firstChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

$('#chat').addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-act]');
  if (!b || !stream) return;
  const li = b.closest('li');
  const user = li.dataset.user;
  const name = li.querySelector('b').textContent;
  switch (b.dataset.act) {
    case 'delete':
      await moderate('POST', `messages/${encodeURIComponent(li.dataset.msg)}/delete`, undefined, 'Message deleted.');
      break;
    case 'mute':
      await moderate('POST', 'mutes', { user_id: user, duration_seconds: Number($('#mute-for').value) },
        `${name} is muted for ${$('#mute-for').selectedOptions[0].textContent}.`);
      break;
    case 'ban':
      if (confirm(`Ban ${name} from the chat?`)) await moderate('POST', 'bans', { user_id: user }, `${name} is banned.`);
      break;
  }
});

$('#chat-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('#chat-text').value.trim();
  if (!text || !stream) return;
  try {
    await hub.publish(`live:${stream.id}`, { text });
    $('#chat-text').value = '';
    say($('#chat-note'), '');
  } catch (err) {
    say($('#chat-note'), err.message, 'error');
  }
});

function showSlow(seconds) {
  $('#slow-now').textContent = seconds ? `Slow mode: one message per viewer every ${seconds} s.` : 'Slow mode off.';
  $('#slow-now').dataset.seconds = seconds || 0;
}

function showPinnedProduct(p) {
  const now = $('#pinned-product-now');
  now.dataset.pinned = String(!!p);
  now.textContent = p ? `Pinned: ${p.product.name} · ${rupiah(p.price)}${p.stock != null ? ` · ${p.stock} in stock` : ''}` : 'Nothing pinned.';
  $('#unpin-product').disabled = !p;
}

function showPinnedMessage(m) {
  const now = $('#pinned-message-now');
  now.dataset.pinned = String(!!m);
  now.textContent = m ? `Pinned: ${m.text}` : 'Nothing pinned.';
  $('#unpin-message').disabled = !m;
}

$('#pin-product-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('#p-name').value.trim();
  const body = {
    product: { id: 'sku-' + name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40), name },
    price: Number($('#p-price').value),
  };
  if ($('#p-stock').value !== '') body.stock = Number($('#p-stock').value);
  try {
    showPinnedProduct(await api(tok(), 'PUT', `/v1/streams/${stream.id}/pinned-product`, body));
    say($('#pin-note'), 'Product pinned in the room.', 'ok');
  } catch (err) {
    say($('#pin-note'), problemText(err), 'error');
  }
});

$('#unpin-product').addEventListener('click', async () => {
  try {
    await api(tok(), 'DELETE', `/v1/streams/${stream.id}/pinned-product`);
    showPinnedProduct(null);
    say($('#pin-note'), 'Product unpinned.', 'ok');
  } catch (err) {
    say($('#pin-note'), problemText(err), 'error');
  }
});

$('#pin-message-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const voucher = $('#m-voucher').value.trim().toUpperCase();
  const text = $('#m-text').value.trim() + (voucher ? ` Voucher: ${voucher}` : '');
  try {
    showPinnedMessage(await api(tok(), 'PUT', `/v1/streams/${stream.id}/moderation/pinned-message`, { text }));
    say($('#pin-note'), 'Message pinned above the chat.', 'ok');
  } catch (err) {
    say($('#pin-note'), problemText(err), 'error');
  }
});

$('#unpin-message').addEventListener('click', async () => {
  try {
    await api(tok(), 'DELETE', `/v1/streams/${stream.id}/moderation/pinned-message`);
    showPinnedMessage(null);
    say($('#pin-note'), 'Message unpinned.', 'ok');
  } catch (err) {
    say($('#pin-note'), problemText(err), 'error');
  }
});

// --- moderation ---
function problemText(err) {
  return err.problem && err.problem.field ? `${err.problem.field}: ${err.message}` : err.message;
}

/** Calls /v1/streams/{id}/moderation/{path}, reports the outcome and reloads the lists. */
async function moderate(method, path, body, done) {
  try {
    await api(tok(), method, `/v1/streams/${stream.id}/moderation/${path}`, body);
    say($('#mod-note'), done, 'ok');
    await loadModeration();
    return true;
  } catch (err) {
    say($('#mod-note'), problemText(err), 'error');
    return false;
  }
}

let modTimer = null;
function scheduleModeration() { // moderation.* events come in bursts; read once
  clearTimeout(modTimer);
  modTimer = setTimeout(loadModeration, 150);
}

async function loadModeration() {
  if (!stream) return;
  let m;
  try {
    m = await api(tok(), 'GET', `/v1/streams/${stream.id}/moderation`);
  } catch (err) {
    say($('#mod-note'), problemText(err), 'error');
    return;
  }
  const until = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  people('#mutes', (m.mutes || []).map((x) => ({ user: x.user_id, note: `until ${until(x.until)}`, act: 'Unmute',
    run: () => moderate('DELETE', `mutes/${encodeURIComponent(x.user_id)}`, undefined, `${x.user_id} may chat again.`) })));
  people('#bans', (m.bans || []).map((u) => ({ user: u, act: 'Unban',
    run: () => moderate('DELETE', `bans/${encodeURIComponent(u)}`, undefined, `${u} is no longer banned.`) })));
  people('#moderators', (m.moderators || []).map((u) => ({ user: u, act: 'Remove',
    run: () => moderate('DELETE', `moderators/${encodeURIComponent(u)}`, undefined, `${u} is no longer a moderator.`) })));
  showSlow(m.slow_mode_seconds);
  if (document.activeElement !== $('#slow-seconds')) $('#slow-seconds').value = m.slow_mode_seconds || 0;
  if (document.activeElement !== $('#words')) $('#words').value = (m.muted_words || []).join(', ');
  if (m.muted_words_mode) $('#words-mode').value = m.muted_words_mode;
  showPinnedProduct(m.pinned_product || null);
  showPinnedMessage(m.pinned_message || null);
  if (m.likes != null) $('#h-likes').textContent = m.likes;
}

function people(sel, rows) {
  const ul = $(sel);
  ul.replaceChildren(...rows.map((r) => {
    const b = el('button', { type: 'button', class: 'small secondary', text: r.act, 'aria-label': `${r.act} ${r.user}` });
    b.addEventListener('click', r.run);
    return el('li', { 'data-user': r.user },
      el('span', {}, el('code', { text: r.user }), r.note ? ` ${r.note}` : ''), b);
  }));
}

function modUser() {
  const u = $('#mod-user').value.trim();
  if (!u) say($('#mod-note'), 'Type a user id first (the chat lines have Mute and Ban too).', 'error');
  return u;
}
$('#mod-mute').addEventListener('click', () => {
  const u = modUser();
  if (u) moderate('POST', 'mutes', { user_id: u, duration_seconds: Number($('#mute-for').value) }, `${u} is muted.`);
});
$('#mod-ban').addEventListener('click', () => {
  const u = modUser();
  if (u) moderate('POST', 'bans', { user_id: u }, `${u} is banned.`);
});
$('#mod-appoint').addEventListener('click', () => {
  const u = modUser();
  if (u) moderate('POST', 'moderators', { user_id: u }, `${u} is a moderator now.`);
});
$('#slow-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const seconds = Number($('#slow-seconds').value);
  moderate('PUT', 'slow-mode', { seconds }, seconds ? `Slow mode: ${seconds} s.` : 'Slow mode off.');
});
$('#words-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const words = $('#words').value.split(',').map((w) => w.trim()).filter(Boolean);
  moderate('PUT', 'muted-words', { words, mode: $('#words-mode').value }, words.length ? `${words.length} muted word(s).` : 'No muted words.');
});

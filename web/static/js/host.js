// host.html: start a stream, launch flash sales, watch orders and revenue
// arrive on studio:{stream}. host.html?stream=ID reopens a stream.
import { Hub, wsURL } from './hub.js';
import { $, el, api, pageToken, claims, connectionBadge, rupiah, clock, say } from './ui.js';

const token = await pageToken('host', { sub: 'host-1', name: 'Sari Host', roles: ['host'] });
const me = token ? claims(token) : null;
$('#who').textContent = me ? `${me.name || me.sub} (${(me.roles || []).join(', ') || 'no roles'})` : 'nobody';
if (!token) say($('#start-note'), 'No host token: get one on the start page (index.html).', 'error');

const hub = new Hub(wsURL(), { token });
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
  api(token, 'GET', `/v1/streams/${encodeURIComponent(existing)}`).then(showStream)
    .catch((e) => say($('#start-note'), e.message, 'error'));
}

$('#start-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    showStream(await api(token, 'POST', '/v1/streams', { title: $('#stream-title').value.trim() }));
  } catch (err) {
    say($('#start-note'), err.message, 'error');
  }
});

function showStream(s) {
  stream = s;
  history.replaceState(null, '', `?stream=${encodeURIComponent(s.id)}`);
  $('#title').textContent = s.title;
  $('#start-card').hidden = true;
  for (const id of ['#stream-card', '#sale-card', '#orders-card']) $(id).hidden = false;
  $('#stream-id').textContent = s.id;
  $('#stream-state').textContent = s.state;
  const link = new URL(`viewer.html?stream=${encodeURIComponent(s.id)}`, location.href).href;
  $('#viewer-link').href = link;
  $('#sale-form button').disabled = s.state !== 'live';
  hub.subscribe(`studio:${s.id}`, onStudio, { backlog: 100 });
}

$('#copy-link').addEventListener('click', async () => {
  try { await navigator.clipboard.writeText($('#viewer-link').href); say($('#sale-note'), 'Viewer link copied.', 'ok'); }
  catch { say($('#sale-note'), $('#viewer-link').href); }
});

$('#end-stream').addEventListener('click', async () => {
  if (!stream || !confirm('End the stream for everyone?')) return;
  try { showStreamState(await api(token, 'POST', `/v1/streams/${stream.id}/end`)); } catch (e) { say($('#sale-note'), e.message, 'error'); }
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
    const s = await api(token, 'POST', `/v1/streams/${stream.id}/flash-sales`, body);
    setSale(s);
    say($('#sale-note'), `Sale ${s.id} launched.`, 'ok');
  } catch (err) {
    say($('#sale-note'), err.problem && err.problem.field ? `${err.problem.field}: ${err.message}` : err.message, 'error');
  }
});

$('#end-sale').addEventListener('click', async () => {
  if (!sale) return;
  try { setSale(await api(token, 'POST', `/v1/flash-sales/${sale.id}/end`)); } catch (e) { say($('#sale-note'), e.message, 'error'); }
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
      if (sale && sale.id === d.flash_sale_id) setSale({ ...sale, stock_left: d.stock_left, sold: d.sold });
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
  }
}

function setSale(s) {
  sale = { ...(sale && sale.id === s.id ? sale : {}), ...s };
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

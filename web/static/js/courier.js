// courier.html?order=ID[&from=lat,lng]: a courier app simulator. It moves the
// delivery forward (POST /v1/orders/{id}/status) and, while driving, publishes
// its location into order:{id} over the socket every 2.1 s, on a straight
// line to the address at about 30 km/h.
import { Hub, wsURL, HubError } from './hub.js';
import { $, tokenSource, el, api, pageToken, claims, connectionBadge, say } from './ui.js';

const params = new URLSearchParams(location.search);
const orderID = params.get('order') || '';
const guest = 'courier-' + Math.random().toString(36).slice(2, 8);
const token = await pageToken('courier', { sub: guest, name: 'Courier ' + guest.slice(8), roles: ['courier'] });
const me = token ? claims(token) : null;
$('#who').textContent = me ? `${me.name || me.sub} (${me.sub})` : 'nobody (get a token on the start page)';
$('#order-id').textContent = orderID || '–';

const hub = new Hub(wsURL(), { token, getToken: tokenSource('courier', () => hub.token) });
const tok = () => hub.token; // the current token, refreshed with the connection's
connectionBadge(hub, $('#conn'));
window.livehub = hub; // for the console and the browser test
hub.addEventListener('state', () => { $('#conn-banner').hidden = hub.state !== 'reconnecting'; });

const SPEED = 30 / 3.6;   // m/s
const EVERY = 2100;       // ms between points
const R = 6371000;        // earth radius, m

let status = '';
let address = null;
let pos = null;            // {lat, lng}: where the courier is
let lastDeviceTime = 0;    // the last device_time sent, kept monotonic
let lastMoveAt = 0;
let driving = null;        // interval while driving
let sent = 0;

function log(text, kind = '') {
  const li = el('li', { text: `${new Date().toLocaleTimeString()} ${text}` });
  if (kind) li.dataset.kind = kind;
  $('#log').prepend(li);
  while ($('#log').children.length > 100) $('#log').lastChild.remove();
}

const rad = (d) => d * Math.PI / 180;

function distance(a, b) {
  const dLat = rad(b.lat - a.lat), dLng = rad(b.lng - a.lng);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

function bearing(a, b) {
  const y = Math.sin(rad(b.lng - a.lng)) * Math.cos(rad(b.lat));
  const x = Math.cos(rad(a.lat)) * Math.sin(rad(b.lat)) - Math.sin(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.cos(rad(b.lng - a.lng));
  return ((Math.atan2(y, x) * 180 / Math.PI) + 360) % 360;
}

/** The point m metres from a towards b (b itself when closer than that). */
function toward(a, b, m) {
  const d = distance(a, b);
  if (d <= m || d === 0) return { lat: b.lat, lng: b.lng };
  const f = m / d;
  return { lat: a.lat + (b.lat - a.lat) * f, lng: a.lng + (b.lng - a.lng) * f };
}

function renderJob() {
  const pill = $('#status');
  pill.dataset.status = status || 'none';
  pill.textContent = status ? status.replace(/_/g, ' ') : 'not assigned';
  if (address) $('#address').textContent = `${address.text ? address.text + ' · ' : ''}${address.lat.toFixed(5)}, ${address.lng.toFixed(5)}`;
  const p = $('#position');
  if (pos) {
    p.textContent = `${pos.lat.toFixed(5)}, ${pos.lng.toFixed(5)}`;
    p.dataset.lat = pos.lat;
    p.dataset.lng = pos.lng;
  }
  if (pos && address) {
    const d = Math.round(distance(pos, address));
    $('#left').textContent = `${d} m`;
    $('#left').dataset.meters = d;
  }
  $('#sent').textContent = sent;
  const ended = status === 'delivered' || status === 'cancelled';
  for (const b of document.querySelectorAll('button[data-status]')) b.disabled = ended || !status;
  $('#drive').disabled = ended || !status || !pos || !address;
}

function parseFrom(s) {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/.exec(s || '');
  return m ? { lat: Number(m[1]), lng: Number(m[2]) } : null;
}

async function load() {
  try {
    const t = await api(tok(), 'GET', `/v1/orders/${encodeURIComponent(orderID)}/tracking`);
    status = t.status;
    address = t.address;
    if (t.last_point) {
      pos = { lat: t.last_point.lat, lng: t.last_point.lng };
      lastDeviceTime = Math.max(lastDeviceTime, t.last_point.device_time || 0);
    }
    if (!pos) pos = parseFrom(params.get('from'));
    if (!pos && address) { // no start given: about 600 m south-west of the address
      pos = { lat: address.lat - 600 / 110540 / Math.SQRT2, lng: address.lng - 600 / (111320 * Math.cos(rad(address.lat))) / Math.SQRT2 };
    }
    say($('#note'), '');
  } catch (e) {
    say($('#note'), e.message, 'error');
    log(`tracking: ${e.message}`, 'error');
  }
  renderJob();
}

if (!orderID) {
  say($('#note'), 'Open this page with ?order=<order id>.', 'error');
  renderJob();
} else if (!token) {
  say($('#note'), 'Sign in first: get a courier token on the start page.', 'error');
  renderJob();
} else {
  await load();
  hub.subscribe(`order:${orderID}`, onEvent);
  hub.addEventListener('suberror', (e) => { say($('#note'), `order channel: ${e.detail.error.message}`, 'error'); log(`subscribe refused: ${e.detail.error.message}`, 'error'); });
  hub.addEventListener('subscribed', (e) => { if (!e.detail.personal) log('subscribed to the order channel'); });
  hub.connect();
}

function onEvent(ev) {
  if (!ev || !ev.type) return;
  const d = ev.data || {};
  if (ev.type === 'order.status') {
    status = d.status;
    log(`status: ${d.status}`, 'ok');
    if (status === 'delivered' || status === 'cancelled') stopDriving();
    renderJob();
  } else if (ev.type === 'courier.location') {
    const eta = d.eta_seconds == null ? 'no ETA' : `ETA ${d.eta_seconds} s`;
    $('#left').title = `${d.distance_meters} m, ${eta} (as the hub sees it)`;
  } else if (ev.type === 'order.arriving') {
    log(`arriving: ${d.distance_meters} m left`, 'ok');
  }
}

for (const b of document.querySelectorAll('button[data-status]')) {
  b.addEventListener('click', async () => {
    const want = b.dataset.status;
    b.disabled = true;
    try {
      const d = await api(tok(), 'POST', `/v1/orders/${encodeURIComponent(orderID)}/status`, { status: want });
      status = d.status;
      say($('#note'), `Status: ${want.replace(/_/g, ' ')}`, 'ok');
      $('#note').dataset.status = status;
      if (status === 'delivered') stopDriving();
    } catch (e) {
      say($('#note'), `Refused: ${e.message}`, 'error');
      $('#note').dataset.code = e.code || '';
      log(`status ${want} refused: ${e.message}`, 'error');
    }
    renderJob();
  });
}

$('#drive').addEventListener('click', () => (driving ? stopDriving() : startDriving()));

function startDriving() {
  if (driving || !pos || !address) return;
  lastMoveAt = Date.now();
  driving = setInterval(step, EVERY);
  $('#drive').textContent = 'Stop';
  $('#drive').setAttribute('aria-pressed', 'true');
  log('driving');
  step();
}

function stopDriving() {
  if (!driving) return;
  clearInterval(driving);
  driving = null;
  $('#drive').textContent = 'Drive';
  $('#drive').setAttribute('aria-pressed', 'false');
  log('stopped');
}

let stepping = false;
async function step() {
  if (stepping || hub.state !== 'connected') return;
  const sub = hub.subs.get(`order:${orderID}`);
  if (!sub || !sub.active) return;
  stepping = true;
  const now = Date.now();
  // Moves by the time elapsed since the last point went out, at SPEED.
  const moved = SPEED * Math.min(10, (now - lastMoveAt) / 1000);
  const next = toward(pos, address, moved);
  const deviceTime = Math.max(now, lastDeviceTime + 1);
  const point = {
    lat: Number(next.lat.toFixed(7)),
    lng: Number(next.lng.toFixed(7)),
    accuracy: 5,
    heading: Math.round(bearing(pos, address)) % 360,
    speed: moved > 0 ? Number(SPEED.toFixed(2)) : 0,
    device_time: deviceTime,
  };
  try {
    await hub.publish(`order:${orderID}`, point);
    pos = next;
    lastDeviceTime = deviceTime;
    lastMoveAt = now;
    sent++;
    $('#note').dataset.code = '';
    if (distance(pos, address) < 1) { log('at the address', 'ok'); stopDriving(); }
  } catch (e) {
    const code = e instanceof HubError ? e.code : '';
    // 111 (too many locations) is temporary: the next tick sends again.
    log(`location refused${code ? ` (${code})` : ''}: ${e.message}`, 'error');
    say($('#note'), `Location refused: ${e.message}`, 'error');
    $('#note').dataset.code = String(code);
    if (e.message === 'tracking has ended') stopDriving();
  } finally {
    stepping = false;
    renderJob();
  }
}

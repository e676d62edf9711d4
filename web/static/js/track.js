// track.html?order=ID: the buyer follows a delivery: the status timeline and
// a map drawn here in SVG (no tiles): the address, the courier's path and
// where it is now, with the ETA and the distance left.
import { Hub, wsURL } from './hub.js';
import { $, tokenSource, api, pageToken, claims, connectionBadge, say } from './ui.js';

const orderID = new URLSearchParams(location.search).get('order') || '';
const token = await pageToken('viewer', null);
const me = token ? claims(token) : null;
$('#who').textContent = me ? (me.name || me.sub) : 'nobody (get a token on the start page)';
$('#order-id').textContent = orderID || '–';

const hub = new Hub(wsURL(), { token, getToken: tokenSource('viewer', () => hub.token) });
const tok = () => hub.token; // the current token, refreshed with the connection's
connectionBadge(hub, $('#conn'));
window.livehub = hub; // for the console and the browser test
hub.addEventListener('state', () => { $('#conn-banner').hidden = hub.state !== 'reconnecting'; });

const W = 400, H = 300, PAD = 34; // the map's viewBox and margin
const RANK = { assigned: 0, picked_up: 1, on_the_way: 2, delivered: 4 };
const LABEL = { assigned: 'courier assigned', picked_up: 'picked up', on_the_way: 'on the way', delivered: 'delivered', cancelled: 'cancelled' };

const state = {
  status: '',        // the delivery's status
  cancelled: false,
  arriving: false,
  times: {},         // step -> time it happened
  address: null,     // {lat, lng, text}
  path: new Map(),   // device_time -> point, the courier's accepted points
  current: null,     // the newest point
  eta: null,
  distance: null,
};

async function loadTracking() {
  try {
    const t = await api(tok(), 'GET', `/v1/orders/${encodeURIComponent(orderID)}/tracking`);
    state.address = t.address || state.address;
    setStatus(t.status, t.updated_at);
    if (t.assigned_at) state.times.assigned = state.times.assigned || t.assigned_at;
    if (t.arriving) markArriving(null);
    if (t.last_point) addPoint(t.last_point, { eta_seconds: t.eta_seconds, distance_meters: t.distance_meters });
    render();
  } catch (e) {
    say($('#note'), e.code === 'not_found' ? `${e.message}: the page follows the order once a courier is assigned.` : e.message, 'error');
  }
}

function onEvent(ev) {
  if (!ev || !ev.type) return;
  const d = ev.data || {};
  switch (ev.type) {
    case 'order.status':
      setStatus(d.status, d.at || ev.at);
      break;
    case 'courier.location':
      addPoint(d, d, ev.at);
      break;
    case 'order.arriving':
      markArriving(d.at || ev.at);
      if (d.distance_meters != null && state.distance == null) state.distance = d.distance_meters;
      break;
    default:
      return;
  }
  render();
}

function setStatus(status, at) {
  if (!status) return;
  if (status === 'cancelled') {
    state.cancelled = true;
    state.times.cancelled = at;
    return;
  }
  if (!(status in RANK)) return;
  if (status === 'assigned') state.times.assigned = at || state.times.assigned; // a reassignment
  else if (!state.times[status]) state.times[status] = at;
  if (!state.status || RANK[status] >= RANK[state.status]) state.status = status; // only forward
}

function markArriving(at) {
  state.arriving = true;
  if (at && !state.times.arriving) state.times.arriving = at;
}

function addPoint(p, figures, at) {
  if (typeof p.lat !== 'number' || typeof p.lng !== 'number') return;
  const key = p.device_time || Date.now();
  state.path.set(key, { lat: p.lat, lng: p.lng, t: key, heading: p.heading || 0 });
  if (!state.current || key >= state.current.t) {
    state.current = state.path.get(key);
    state.eta = figures.eta_seconds ?? null;
    state.distance = figures.distance_meters ?? state.distance;
    state.updated = at || p.received_at || new Date(key).toISOString();
  }
  if (state.path.size > 500) state.path.delete(Math.min(...state.path.keys()));
}

// --- rendering ---
function render() {
  renderTimeline();
  renderMap();
  renderFigures();
}

function renderTimeline() {
  const reached = state.status ? RANK[state.status] : -1;
  const pill = $('#status');
  const shown = state.cancelled ? 'cancelled' : state.status || 'none';
  pill.dataset.status = shown;
  pill.dataset.state = shown === 'delivered' ? 'live' : shown === 'cancelled' ? 'ended' : '';
  pill.textContent = state.cancelled ? 'cancelled'
    : state.status === 'on_the_way' && state.arriving ? 'arriving' : LABEL[state.status] || 'no courier yet';
  let current = '';
  for (const li of $('#timeline').children) {
    const step = li.dataset.step;
    const done = step === 'arriving' ? state.arriving || reached >= RANK.delivered : reached >= RANK[step];
    li.dataset.done = String(done);
    if (done) current = step;
    const at = state.times[step];
    li.querySelector('time').textContent = at ? new Date(at).toLocaleTimeString() : '';
  }
  for (const li of $('#timeline').children) li.dataset.current = String(li.dataset.step === current);
  $('#timeline').dataset.status = state.status;
  if (state.cancelled) say($('#note'), 'The delivery was cancelled.', 'error');
  else if (state.status === 'delivered') say($('#note'), 'Delivered. Enjoy!', 'ok');
}


function projector() {
  const pts = [...state.path.values()];
  if (state.address) pts.push(state.address);
  if (!pts.length) return null;
  const lat0 = pts.reduce((s, p) => s + p.lat, 0) / pts.length;
  const kx = Math.cos(lat0 * Math.PI / 180) * 111320; // metres per degree of longitude
  const ky = 110540;                                   // metres per degree of latitude
  const xs = pts.map((p) => p.lng * kx), ys = pts.map((p) => p.lat * ky);
  let [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(maxX - minX, maxY - minY, 300); // at least 300 m across
  const scale = Math.min((W - 2 * PAD) / Math.max(maxX - minX, span * 0.75), (H - 2 * PAD) / Math.max(maxY - minY, span * 0.75));
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  return (p) => [W / 2 + (p.lng * kx - cx) * scale, H / 2 - (p.lat * ky - cy) * scale, scale];
}

const fmt = (n) => n.toFixed(1);

function renderMap() {
  const proj = projector();
  const pin = $('#pin'), courier = $('#courier'), line = $('#path'), bee = $('#beeline');
  if (!proj) return;
  if (state.address) {
    const [x, y, scale] = proj(state.address);
    pin.setAttribute('transform', `translate(${fmt(x)} ${fmt(y)})`);
    pin.setAttribute('visibility', 'visible');
    $('#pin-zone').setAttribute('r', fmt(Math.min(200 * scale, 400))); // the 200 m "arriving" zone
    const text = state.address.text ? `${state.address.text} · ` : '';
    $('#address').textContent = `Deliver to ${text}${state.address.lat.toFixed(5)}, ${state.address.lng.toFixed(5)}`;
  }
  const pts = [...state.path.values()].sort((a, b) => a.t - b.t);
  line.setAttribute('points', pts.map((p) => proj(p).slice(0, 2).map(fmt).join(',')).join(' '));
  if (state.current) {
    const [x, y] = proj(state.current);
    courier.setAttribute('transform', `translate(${fmt(x)} ${fmt(y)})`);
    courier.setAttribute('visibility', 'visible');
    courier.dataset.lat = state.current.lat;
    courier.dataset.lng = state.current.lng;
    $('#map-empty').setAttribute('visibility', 'hidden');
    if (state.address && state.status !== 'delivered') {
      const [ax, ay] = proj(state.address);
      Object.entries({ x1: x, y1: y, x2: ax, y2: ay }).forEach(([k, v]) => bee.setAttribute(k, fmt(v)));
      bee.setAttribute('visibility', 'visible');
    } else {
      bee.setAttribute('visibility', 'hidden');
    }
  }
}

function renderFigures() {
  const eta = $('#eta'), dist = $('#distance');
  if (state.status === 'delivered') {
    eta.textContent = 'delivered';
  } else if (state.eta != null) {
    eta.textContent = state.eta < 60 ? 'under a minute' : `${Math.round(state.eta / 60)} min`;
  } else {
    eta.textContent = state.current ? 'not moving' : '–';
  }
  eta.dataset.seconds = state.eta ?? '';
  if (state.distance != null) {
    dist.textContent = state.distance >= 1000 ? `${(state.distance / 1000).toFixed(1)} km` : `${state.distance} m`;
  }
  dist.dataset.meters = state.distance ?? '';
  $('#updated').textContent = state.updated ? new Date(state.updated).toLocaleTimeString() : '–';
}

// --- start, once everything above is defined ---
if (!orderID) {
  say($('#note'), 'Open this page with ?order=<order id>.', 'error');
} else if (!token) {
  say($('#note'), 'Sign in first: get a token on the start page.', 'error');
} else {
  await loadTracking(); // the last known state first
  hub.subscribe(`order:${orderID}`, onEvent, { backlog: 50 });
  hub.onPersonal((_ch, ev) => { if (ev && ev.data && ev.data.order_id === orderID) onEvent(ev); });
  hub.addEventListener('suberror', (e) => say($('#note'), `order channel: ${e.detail.error.message}`, 'error'));
  // After a gap the channel may not recover everything: read the last known state again.
  hub.addEventListener('subscribed', (e) => { if (e.detail.wasRecovering && !e.detail.recovered) loadTracking(); });
  hub.connect();
}

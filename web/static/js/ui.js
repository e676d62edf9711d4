// ui.js: what the pages share: tokens, the /v1 API, the connection badge,
// formatting.

/** Rupiah, whole: 499000 -> "Rp499.000". */
export function rupiah(n) {
  return 'Rp' + Math.round(Number(n) || 0).toLocaleString('id-ID');
}

export function $(sel, root = document) { return root.querySelector(sel); }

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.includes('-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

/** A random v4 UUID, also where crypto.randomUUID is missing (plain http). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The claims of a JWT, unverified (to show who is signed in). */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(escape(atob(part + '==='.slice((part.length + 3) % 4))));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

const storeKey = (role) => `livehub.token.${role}`;

export function savedToken(role) { return localStorage.getItem(storeKey(role)) || ''; }
export function saveToken(role, token) {
  if (token) localStorage.setItem(storeKey(role), token);
  else localStorage.removeItem(storeKey(role));
}

/** Mints a demo token on a node in development mode; null when it has no /dev/token. */
export async function devToken(sub, name, roles = []) {
  try {
    const res = await fetch('/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub, name, roles }),
    });
    if (!res.ok) return null;
    return (await res.json()).token || null;
  } catch {
    return null;
  }
}

/**
 * The page's token for a role: "#token=..." in the address (kept for the
 * tab), then the one index.html saved, then a fresh demo token.
 */
export async function pageToken(role, demo) {
  const tok = await knownToken(role);
  if (tok) {
    // An expired token cannot sign in: a node in development mode mints a
    // fresh one for the same user (the connection would ask anyway).
    const c = claims(tok);
    if (c && c.exp && c.exp * 1000 <= Date.now()) {
      const fresh = await devToken(c.sub, c.name || '', c.roles || []);
      if (fresh) { sessionStorage.setItem(storeKey(role), fresh); return fresh; }
    }
    return tok;
  }
  if (demo) {
    const tok = await devToken(demo.sub, demo.name, demo.roles);
    if (tok) { saveToken(role, tok); return tok; }
  }
  return '';
}

/**
 * The page's token source for Hub's opts.getToken: a fresh token for the
 * same user, name and roles as the current one. Only a node in development
 * mode mints tokens (POST /dev/token); elsewhere it answers null (the hub
 * then stops refreshing), and an app that embeds these pages hands its own
 * source to the Hub instead. The new
 * token replaces the one kept for the tab, so a reload signs in with it.
 */
export function tokenSource(role, current) {
  return async () => {
    const c = claims(current());
    if (!c || !c.sub) return null;
    const tok = await devToken(c.sub, c.name || '', c.roles || []);
    if (!tok) return null; // this node does not mint tokens
    sessionStorage.setItem(storeKey(role), tok);
    return tok;
  };
}

async function knownToken(role) {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(storeKey(role), fromHash);
    return fromHash;
  }
  return sessionStorage.getItem(storeKey(role)) || savedToken(role);
}

/** An API problem (RFC 9457) as an Error with code, status and detail. */
export class APIError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || '';
    this.problem = problem;
  }
}

/** Calls the /v1 API; resolves with the JSON body, rejects with APIError. */
export async function api(token, method, path, body, headers = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { detail: text }; }
  if (!res.ok) {
    const err = new APIError(res.status, data);
    err.retryAfter = res.headers.get('Retry-After') || '';
    throw err;
  }
  return data;
}

/** Keeps a badge element in step with the hub's connection state. */
export function connectionBadge(hub, badge) {
  let tick = null;
  const show = () => {
    clearInterval(tick);
    const { state, reason } = hub;
    badge.dataset.state = state;
    const label = {
      connecting: 'Connecting…',
      connected: 'Live',
      reconnecting: 'Reconnecting…',
      disconnected: 'Offline',
    }[state] || state;
    badge.textContent = label;
    badge.title = reason || '';
    if (state === 'reconnecting' && hub.nextRetryAt) {
      const upd = () => {
        const s = Math.max(0, Math.ceil((hub.nextRetryAt - Date.now()) / 1000));
        badge.textContent = `Reconnecting… ${s}s`;
      };
      upd();
      tick = setInterval(upd, 500);
    }
  };
  hub.addEventListener('state', show);
  show();
}

/** "mm:ss" (or "h:mm:ss") until t, never negative. */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/** Shows a short message in a live region. */
export function say(region, text, kind = 'info') {
  region.textContent = text;
  region.dataset.kind = kind;
}

/**
 * roomEvent shows the room events the host's and the viewer's pages show
 * alike: a deleted chat line, slow mode, the pinned product and message,
 * through the page's own `show.slow`, `show.product` and `show.message`.
 * It returns false for any other event, which the page handles itself.
 */
export function roomEvent(ev, show) {
  const d = ev.data || {};
  switch (ev.type) {
    case 'chat.deleted': {
      const li = d.message_id && document.querySelector(`#chat li[data-msg="${CSS.escape(d.message_id)}"]`);
      if (li) li.remove();
      return true;
    }
    case 'chat.slow_mode':
      show.slow(d.seconds);
      return true;
    case 'product.pinned':
      show.product(d);
      return true;
    case 'product.unpinned':
      show.product(null);
      return true;
    case 'message.pinned':
      show.message(d);
      return true;
    case 'message.unpinned':
      show.message(null);
      return true;
  }
  return false;
}

// hub.js: a small client of the Centrifugo protocol v2 (JSON) as LiveHub
// speaks it (docs/protocol.md). One WebSocket, commands with ids, publication
// pushes dispatched per channel, pings answered, and an automatic reconnect
// with backoff that resubscribes with recover from the last offset and epoch.
//
//   const hub = new Hub(wsURL(), { token });
//   hub.addEventListener('state', () => console.log(hub.state));
//   const room = hub.subscribe('live:str_1', (data, pub) => ..., { backlog: 100 });
//   hub.connect();
//   await hub.rpc('likes.add', { stream_id: 'str_1', count: 3 });
//
// States: "connecting" (first attempt), "connected", "reconnecting" (lost,
// retrying with backoff) and "disconnected" (closed for good: stopped by the
// page, or closed with a code that forbids reconnecting, such as 3500).
//
// Tokens with an expiry: give the hub a token source, opts.getToken, an async
// function answering a fresh connection token for the same user. The hub then
// sends the protocol's `refresh` command before the token runs out (the
// connect reply's `ttl`), and when a reconnect is answered 109 "token
// expired" it asks the source for a new token and connects again. Without a
// source the connection lasts until the node closes it at expiry, and the
// next connect attempt ends in "disconnected".
//
// Events: "state" (detail {state, reason}), "subscribed" (detail {channel,
// recovered, wasRecovering}, also for the personal channels the node
// subscribes at connect, with personal: true), "suberror" and "refresh"
// (detail {ttl}) after a successful token refresh.

/** The node's WebSocket endpoint, on the host that served the page. */
export function wsURL() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/connection/websocket`;
}

/** An error answered to a command: {code, message, temporary}. */
export class HubError extends Error {
  constructor(err) {
    super(err.message || `error ${err.code}`);
    this.code = err.code;
    this.temporary = !!err.temporary;
  }
}

const DEFAULTS = {
  minDelay: 500,       // first reconnect delay, ms
  maxDelay: 10000,     // backoff ceiling, ms
  commandTimeout: 10000,
  refreshLead: 60,     // refresh the connection token this many seconds before it expires (at most half its ttl)
  refreshRetry: 5000,  // after a failed refresh, try again this much later, ms
};

export class Hub extends EventTarget {
  constructor(url, opts = {}) {
    super();
    this.url = url;
    this.opts = { ...DEFAULTS, ...opts };
    this.token = opts.token || '';
    this.state = 'disconnected';
    this.reason = '';
    this.user = '';        // the token's sub, from the personal channel
    this.client = '';      // connection id
    this.attempts = 0;     // failed attempts since the last connected state
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();   // id -> {resolve, reject, timer}
    this.subs = new Map();      // channel -> Subscription
    this.personal = new Map();  // server-side channel -> {epoch, offset}
    this.personalHandlers = []; // (channel, data, pub) for user:#... pushes
    this.stopped = true;
    this.retryTimer = null;
    this.idleTimer = null;
    this.pingSeconds = 0;
    this.refreshTimer = null;
    this.expiresAt = 0;    // when the connection token expires (ms), 0 for never
    this.refreshes = 0;    // successful token refreshes on this page
  }

  /** Opens the connection; reconnects by itself until disconnect(). */
  connect() {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempts = 0;
    this.setState('connecting');
    this.open();
  }

  /** Closes the connection for good. */
  disconnect() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.refreshTimer);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.failPending(new Error('disconnected'));
    this.setState('disconnected', 'closed by the page');
  }

  /**
   * Subscribes to a channel. handler(data, pub) gets each publication's data
   * (the event envelope) and the raw publication. With backlog > 0, the first
   * subscription (and one that could not be recovered) also loads the
   * channel's history, so a page opened late shows what happened before.
   */
  subscribe(channel, handler, { backlog = 0 } = {}) {
    let sub = this.subs.get(channel);
    if (!sub) {
      sub = new Subscription(this, channel, backlog);
      this.subs.set(channel, sub);
    }
    if (handler) sub.handlers.push(handler);
    if (this.state === 'connected') sub.send();
    return sub;
  }

  /** Handles pushes of the personal channels the server subscribes at connect. */
  onPersonal(handler) { this.personalHandlers.push(handler); }

  publish(channel, data) { return this.command('publish', { channel, data }); }

  async rpc(method, data) {
    const res = await this.command('rpc', { method, data });
    return res.data;
  }

  history(channel, opts = {}) { return this.command('history', { channel, ...opts }); }

  /** Sends one command and resolves with its result. */
  command(name, body) {
    if (this.state !== 'connected' || !this.ws) {
      return Promise.reject(new Error('not connected'));
    }
    return this.send(name, body);
  }

  // --- internals ---

  send(name, body) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${name} timed out`));
      }, this.opts.commandTimeout);
      this.pending.set(id, { resolve, reject, timer, name });
      this.write({ id, [name]: body });
    });
  }

  write(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  setState(state, reason = '') {
    if (this.state === state && this.reason === reason) return;
    this.state = state;
    this.reason = reason;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, reason } }));
  }

  open() {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.lost(`cannot open: ${e.message}`);
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.sendConnect();
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(ev.code, ev.reason);
    };
    ws.onerror = () => {}; // onclose follows with the code
  }

  async sendConnect() {
    const req = {};
    if (this.token) req.token = this.token;
    if (this.personal.size) {
      req.subs = {};
      for (const [ch, pos] of this.personal) {
        req.subs[ch] = { recover: true, epoch: pos.epoch, offset: pos.offset };
      }
    }
    let res;
    try {
      res = await this.send('connect', req);
    } catch (e) {
      if (e instanceof HubError && e.code === 109) {
        // The token expired: only a new one helps.
        let fresh = null;
        let failed = false;
        if (this.opts.getToken) {
          try { fresh = await this.opts.getToken(); } catch (err) { failed = true; console.warn('token source', err); }
        }
        if (!fresh && !failed) { // nobody can give a new token: stop here
          this.stopped = true;
          if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000, 'token expired'); }
          this.failPending(new Error('token expired'));
          this.setState('disconnected', 'token expired');
          return;
        }
        if (fresh) this.token = fresh;
      }
      if (this.ws) this.ws.close(4000, 'connect failed');
      return;
    }
    this.client = res.client || '';
    this.pingSeconds = res.ping || 0;
    this.scheduleRefresh(res.ttl || 0);
    const personal = [];
    for (const [ch, sr] of Object.entries(res.subs || {})) {
      const m = /^[^:]*:#(.*)$/.exec(ch);
      if (m) this.user = m[1];
      this.personal.set(ch, { epoch: sr.epoch || '', offset: sr.offset || 0 });
      for (const pub of sr.publications || []) this.dispatchPersonal(ch, pub);
      personal.push({ channel: ch, recovered: !!sr.recovered, wasRecovering: !!sr.was_recovering, personal: true });
    }
    this.attempts = 0;
    this.setState('connected');
    for (const detail of personal) this.dispatchEvent(new CustomEvent('subscribed', { detail }));
    this.armIdle();
    for (const sub of this.subs.values()) sub.send();
  }

  // Arms the token refresh for a token that expires in ttl seconds.
  scheduleRefresh(ttl) {
    clearTimeout(this.refreshTimer);
    this.expiresAt = ttl ? Date.now() + ttl * 1000 : 0;
    if (!ttl || !this.opts.getToken) return;
    const lead = Math.min(this.opts.refreshLead, ttl / 2);
    this.refreshTimer = setTimeout(() => this.refresh(), Math.max(1, ttl - lead) * 1000);
  }

  /** Sends `refresh` with a new token from opts.getToken; retries a failure while connected. */
  async refresh() {
    clearTimeout(this.refreshTimer);
    const ws = this.ws;
    const again = () => {
      if (this.ws !== ws || this.state !== 'connected') return; // the next connect starts over
      this.refreshTimer = setTimeout(() => this.refresh(), this.opts.refreshRetry);
    };
    let token;
    try {
      token = await this.opts.getToken();
    } catch (e) {
      console.warn('token source', e);
      again();
      return;
    }
    if (!token) return; // the source has none: the token runs out, and the node closes the connection then
    if (this.ws !== ws || this.state !== 'connected') return;
    let res;
    try {
      res = await this.send('refresh', { token });
    } catch (e) {
      console.warn('refresh', e);
      again();
      return;
    }
    this.token = token;
    this.refreshes++;
    this.scheduleRefresh(res.ttl || 0);
    this.dispatchEvent(new CustomEvent('refresh', { detail: { ttl: res.ttl || 0 } }));
  }

  receive(text) {
    this.armIdle();
    for (const line of String(text).split('\n')) {
      if (!line) continue;
      let msg;
      try { msg = JSON.parse(line); } catch { continue; }
      if (!msg.id && !msg.push && !msg.error && Object.keys(msg).length === 0) {
        this.write({}); // ping: answer with an empty command
        continue;
      }
      if (msg.id) {
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.error) p.reject(new HubError(msg.error));
        else p.resolve(msg[p.name] || {});
        continue;
      }
      if (msg.push) this.handlePush(msg.push);
    }
  }

  handlePush(push) {
    const ch = push.channel;
    if (push.pub) {
      if (this.personal.has(ch)) {
        this.dispatchPersonal(ch, push.pub);
        return;
      }
      const sub = this.subs.get(ch);
      if (sub) sub.receive(push.pub);
    } else if (push.disconnect) {
      this.reason = push.disconnect.reason;
    }
  }

  dispatchPersonal(ch, pub) {
    const pos = this.personal.get(ch);
    if (pos && pub.offset) pos.offset = pub.offset;
    for (const h of this.personalHandlers) {
      try { h(ch, pub.data, pub); } catch (e) { console.error(e); }
    }
  }

  // With no message (pings included) for ping + 15 s, the link is dead.
  armIdle() {
    clearTimeout(this.idleTimer);
    if (!this.pingSeconds) return;
    this.idleTimer = setTimeout(() => {
      if (this.ws) this.ws.close(4001, 'no ping');
    }, (this.pingSeconds + 15) * 1000);
  }

  failPending(err) {
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
  }

  closed(code, reason) {
    clearTimeout(this.idleTimer);
    clearTimeout(this.refreshTimer);
    this.failPending(new Error('connection closed'));
    for (const sub of this.subs.values()) sub.active = false;
    if (this.stopped) return;
    // Codes 3500-3999 and 4500-4999 (and 1009) mean "do not reconnect".
    if ((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000) || code === 1009) {
      this.stopped = true;
      this.setState('disconnected', `${code} ${reason || ''}`.trim());
      return;
    }
    this.lost(`${code} ${reason || ''}`.trim());
  }

  lost(reason) {
    this.attempts++;
    const base = Math.min(this.opts.maxDelay, this.opts.minDelay * 2 ** (this.attempts - 1));
    const delay = Math.round(base / 2 + Math.random() * base / 2);
    this.setState('reconnecting', reason);
    this.nextRetryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { if (!this.stopped) this.open(); }, delay);
  }
}

/** One client-side subscription; remembers its stream position. */
class Subscription {
  constructor(hub, channel, backlog) {
    this.hub = hub;
    this.channel = channel;
    this.backlog = backlog;
    this.handlers = [];
    this.epoch = '';
    this.offset = 0;
    this.positioned = false; // a position worth recovering from
    this.active = false;
    this.sending = false;
    this.buffer = null;      // pubs held back while the backlog loads
    this.seen = new Set();   // envelope ids delivered, against repeats
    this.seenOrder = [];
    this.error = null;
  }

  async send() {
    if (this.active || this.sending) return;
    this.sending = true;
    const req = { channel: this.channel };
    if (this.positioned) Object.assign(req, { recover: true, epoch: this.epoch, offset: this.offset });
    let res;
    try {
      res = await this.hub.send('subscribe', req);
    } catch (e) {
      this.sending = false;
      this.error = e;
      this.hub.dispatchEvent(new CustomEvent('suberror', { detail: { channel: this.channel, error: e } }));
      return;
    }
    this.sending = false;
    this.active = true;
    this.error = null;
    const wasPositioned = this.positioned;
    for (const pub of res.publications || []) this.deliver(pub);
    // Live delivery continues from the position the reply names.
    this.epoch = res.epoch || '';
    this.offset = res.offset || 0;
    this.positioned = !!res.recoverable;
    const needBacklog = this.backlog > 0 && (!wasPositioned || (res.was_recovering && !res.recovered));
    this.hub.dispatchEvent(new CustomEvent('subscribed', {
      detail: { channel: this.channel, recovered: !!res.recovered, wasRecovering: !!res.was_recovering },
    }));
    if (needBacklog) await this.loadBacklog(res.offset || 0);
  }

  async loadBacklog(upTo) {
    this.buffer = [];
    try {
      const h = await this.hub.history(this.channel, { limit: this.backlog });
      for (const pub of h.publications || []) {
        if (!pub.offset || pub.offset <= upTo) this.deliver(pub, true);
      }
    } catch (e) {
      console.warn('history', this.channel, e);
    }
    const held = this.buffer;
    this.buffer = null;
    for (const pub of held) this.deliver(pub);
  }

  receive(pub) {
    if (this.buffer) { this.buffer.push(pub); return; }
    this.deliver(pub);
  }

  deliver(pub, fromHistory = false) {
    if (!fromHistory && pub.offset) this.offset = pub.offset;
    const id = pub.data && pub.data.id;
    if (id && pub.data.type) {
      if (this.seen.has(id)) return;
      this.seen.add(id);
      this.seenOrder.push(id);
      if (this.seenOrder.length > 1000) this.seen.delete(this.seenOrder.shift());
    }
    for (const h of this.handlers) {
      try { h(pub.data, pub); } catch (e) { console.error(e); }
    }
  }
}

// Interop checks: the official `centrifuge` SDK, unmodified, against a running
// livehub. Each check is named, bounded in time and reports a precise message
// on failure. The last line is "interop: N passed, M failed"; the exit code is
// non-zero when any check failed.
//
// Environment:
//   LIVEHUB_URL         ws://host:port/connection/websocket
//   LIVEHUB_HTTP        http://host:port (server API base)
//   LIVEHUB_JWT_SECRET  HS256 secret of connection and subscription tokens
//   LIVEHUB_API_KEY     X-API-Key of the server API
//   LIVEHUB_PING_SECONDS (optional, default 2) the server's ping interval
//   LIVEHUB_SDK_DEBUG=1 (optional) turns on the SDK's debug logging
//   LIVEHUB_ONLY        (optional) comma-separated check numbers to run

import crypto from 'node:crypto';
import { isDeepStrictEqual, inspect } from 'node:util';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as CentrifugeProtobuf } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';

const URL_WS = mustEnv('LIVEHUB_URL');
const URL_HTTP = mustEnv('LIVEHUB_HTTP').replace(/\/+$/, '');
const JWT_SECRET = mustEnv('LIVEHUB_JWT_SECRET');
const API_KEY = mustEnv('LIVEHUB_API_KEY');
const PING_SECONDS = Number(process.env.LIVEHUB_PING_SECONDS || '2');
const SDK_DEBUG = process.env.LIVEHUB_SDK_DEBUG === '1';
const ONLY = (process.env.LIVEHUB_ONLY || '').split(',').map(s => s.trim()).filter(Boolean);

// Per-check and whole-run bounds: nothing here may hang.
const CHECK_TIMEOUT_MS = 30000;
const RUN_TIMEOUT_MS = 110000;
const EVENT_TIMEOUT_MS = 5000;

// A random suffix keeps user ids of this run apart from any other run.
const RUN = crypto.randomBytes(3).toString('hex');

function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`interop: environment variable ${name} is required`);
    process.exit(2);
  }
  return v;
}

// ---------------------------------------------------------------- tokens

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

function signJWT(claims) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const sig = b64url(crypto.createHmac('sha256', JWT_SECRET).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${sig}`;
}

const nowSec = () => Math.floor(Date.now() / 1000);

// connToken mints a connection token for user sub.
function connToken(sub, { roles = ['customer'], ttl = 3600, name, exp } = {}) {
  const claims = { sub, iat: nowSec(), exp: exp ?? nowSec() + ttl };
  if (name) claims.name = name;
  if (roles && roles.length) claims.roles = roles;
  return signJWT(claims);
}

// subToken mints a subscription token granting channel to user sub.
function subToken(sub, channel, ttl = 3600) {
  return signJWT({ sub, channel, iat: nowSec(), exp: nowSec() + ttl });
}

// ---------------------------------------------------------------- helpers

class CheckError extends Error {}

function fail(msg) {
  throw new CheckError(msg);
}

function show(v) {
  const text = inspect(v, { depth: 6, breakLength: Infinity, maxStringLength: 200 });
  return text.length > 2000 ? `${text.slice(0, 2000)}... (${text.length} chars)` : text;
}

function assert(cond, msg) {
  if (!cond) fail(msg);
}

function assertEqual(got, want, what) {
  if (!isDeepStrictEqual(got, want)) fail(`${what}: expected ${show(want)}, got ${show(got)}`);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new CheckError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// expectReject runs fn and returns the error it rejects with, failing the
// check when it succeeds or does not settle in time.
async function expectReject(fn, what, ms = EVENT_TIMEOUT_MS) {
  let res;
  try {
    res = await withTimeout(Promise.resolve().then(fn), ms, what);
  } catch (e) {
    if (e instanceof CheckError) throw e;
    return e;
  }
  fail(`${what}: expected an error, got success ${show(res)}`);
}

async function waitUntil(pred, ms, what, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// Recorder keeps every event of the given names an emitter sends, in order,
// so a check can wait for them and then look at the whole sequence.
class Recorder {
  constructor(emitter, names, label) {
    this.label = label;
    this.events = [];
    for (const name of names) {
      emitter.on(name, ctx => this.events.push({ name, ctx, at: Date.now() }));
    }
  }
  mark() {
    return this.events.length;
  }
  since(mark, name, filter = () => true) {
    return this.events.slice(mark).filter(e => (!name || e.name === name) && filter(e.ctx)).map(e => e.ctx);
  }
  all(name, filter = () => true) {
    return this.since(0, name, filter);
  }
  // wait resolves with the first n matching events recorded after mark.
  wait(name, { mark = 0, n = 1, filter = () => true, ms = EVENT_TIMEOUT_MS } = {}) {
    return waitUntil(() => {
      const got = this.since(mark, name, filter);
      return got.length >= n ? got.slice(0, n) : null;
    }, ms, `${n} '${name}' event(s) on ${this.label} (have ${this.since(mark, name, filter).length})`, 20);
  }
  names(mark = 0) {
    return this.events.slice(mark).map(e => e.name);
  }
}

// ---------------------------------------------------------------- server API

async function api(method, body, { expectError = false } = {}) {
  let res;
  try {
    res = await fetch(`${URL_HTTP}/api/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(EVENT_TIMEOUT_MS),
    });
  } catch (e) {
    fail(`POST /api/${method}: request failed: ${e.message}`);
  }
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    fail(`POST /api/${method}: HTTP ${res.status}, body is not JSON: ${text.slice(0, 300)}`);
  }
  if (!expectError && (res.status !== 200 || json.error)) {
    fail(`POST /api/${method} ${JSON.stringify(body)}: HTTP ${res.status}, ${text.slice(0, 300)}`);
  }
  return json;
}

async function apiPublish(channel, data) {
  const r = await api('publish', { channel, data });
  return r.result || {};
}

// ---------------------------------------------------------------- clients

const openClients = new Set();

// BrowserWebSocket is the ws WebSocket delivering each message in a task of
// its own, as browsers and React Native do. centrifuge-js orders the replies
// of consecutive frames through a promise chain that relies on microtasks
// running between two message events; ws by default emits every message of
// one TCP read in the same tick, and then the SDK can interleave the replies
// of a batched frame with those of the next frame.
class BrowserWebSocket extends WebSocket {
  constructor(address, protocols, options) {
    super(address, protocols, { ...options, allowSynchronousEvents: false });
  }
}

// CountingWebSocket is a BrowserWebSocket counting the server's pings (an
// empty JSON object alone on a line) and the pongs the SDK answers with.
class CountingWebSocket extends BrowserWebSocket {
  constructor(...args) {
    super(...args);
    const counter = CountingWebSocket.current;
    if (counter) {
      this.addEventListener('message', ev => {
        const text = typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data).toString();
        for (const line of text.split('\n')) if (line.trim() === '{}') counter.pings++;
      });
      const send = this.send.bind(this);
      this.send = (data, ...rest) => {
        const text = typeof data === 'string' ? data : Buffer.from(data).toString();
        for (const line of text.split('\n')) if (line.trim() === '{}') counter.pongs++;
        return send(data, ...rest);
      };
    }
  }
}
CountingWebSocket.current = null;

function newClient(label, options = {}) {
  const client = new Centrifuge(URL_WS, {
    websocket: BrowserWebSocket,
    debug: SDK_DEBUG,
    timeout: 5000,
    ...options,
  });
  client.label = label;
  client.rec = new Recorder(client, ['connecting', 'connected', 'disconnected', 'error', 'subscribed', 'subscribing', 'unsubscribed', 'publication'], label);
  openClients.add(client);
  return client;
}

function newSub(client, channel, options = {}) {
  const sub = client.newSubscription(channel, options);
  sub.rec = new Recorder(sub, ['subscribing', 'subscribed', 'unsubscribed', 'publication', 'error'], `${client.label}/${channel}`);
  return sub;
}

function closeClient(client) {
  if (!client) return;
  try {
    client.disconnect();
  } catch {
    // already gone
  }
  openClients.delete(client);
}

async function connected(client, what = client.label) {
  client.connect();
  const [ctx] = await client.rec.wait('connected', { ms: 8000 }).catch(e => {
    const errs = client.rec.all('error').map(e => show(e.error || e));
    const disc = client.rec.all('disconnected').concat(client.rec.all('connecting')).map(show);
    fail(`${what} did not connect: ${e.message}; errors: ${errs.join('; ') || 'none'}; state events: ${disc.join('; ') || 'none'}`);
  });
  return ctx;
}

async function subscribed(sub, what = sub.channel) {
  sub.subscribe();
  const [ctx] = await sub.rec.wait('subscribed', { ms: 8000 }).catch(e => {
    const un = sub.rec.all('unsubscribed').map(show);
    const errs = sub.rec.all('error').map(x => show(x.error || x));
    fail(`subscribe to ${what} failed: ${e.message}; unsubscribed: ${un.join('; ') || 'none'}; errors: ${errs.join('; ') || 'none'}`);
  });
  return ctx;
}

// refusedSubscribe subscribes and expects the server to refuse with code.
async function refusedSubscribe(sub, code, what) {
  sub.subscribe();
  const got = await waitUntil(() => {
    const s = sub.rec.all('subscribed');
    if (s.length) return { subscribed: s[0] };
    const u = sub.rec.all('unsubscribed');
    if (u.length) return { unsubscribed: u[0] };
    return null;
  }, 8000, `${what}: subscribe outcome`);
  if (got.subscribed) fail(`${what}: expected refusal with code ${code}, but the subscription succeeded: ${show(got.subscribed)}`);
  assertEqual(got.unsubscribed.code, code, `${what}: unsubscribed code`);
  return got.unsubscribed;
}

function errCode(e) {
  return e && typeof e === 'object' ? e.code : undefined;
}

// ---------------------------------------------------------------- checks

const checks = [];
function check(id, name, fn) {
  checks.push({ id: String(id), name, fn });
}

// 1
check(1, 'connect with a JWT', async () => {
  const user = `u1-${RUN}`;
  const c = newClient('c1', { token: connToken(user, { name: 'Alice' }) });
  try {
    const ctx = await connected(c);
    assert(typeof ctx.client === 'string' && ctx.client.length > 0, `connected ctx.client must be a non-empty string, got ${show(ctx.client)}`);
    assertEqual(c.state, 'connected', 'client state');
    assertEqual(ctx.transport, 'websocket', 'connected ctx.transport');
  } finally {
    closeClient(c);
  }
});

// 2
check(2, 'server-side personal subscription user:#<sub>', async () => {
  const user = `u2-${RUN}`;
  const channel = `user:#${user}`;
  const c = newClient('c2', { token: connToken(user) });
  try {
    await connected(c);
    const [sctx] = await c.rec.wait('subscribed', { filter: x => x.channel === channel }).catch(e =>
      fail(`no client-level 'subscribed' event for ${channel}: ${e.message}; got subscribed for ${show(c.rec.all('subscribed').map(x => x.channel))}`));
    assert(sctx.recoverable === true, `server-side subscription of ${channel} should be recoverable (namespace forces recovery), ctx: ${show(sctx)}`);
    const data = { kind: 'notice', text: 'your order shipped', n: 7 };
    const pos = await apiPublish(channel, data);
    const [pub] = await c.rec.wait('publication', { filter: x => x.channel === channel });
    assertEqual(pub.data, data, `personal publication data`);
    if (pos.offset !== undefined) assertEqual(pub.offset, pos.offset, 'personal publication offset vs API result');
    // Nothing else subscribed this connection: no other channel shows up.
    const others = c.rec.all('subscribed').filter(x => x.channel !== channel);
    assertEqual(others.map(x => x.channel), [], 'unexpected server-side subscriptions');
  } finally {
    closeClient(c);
  }
});

// 3
check(3, 'subscribe to live:room1 and receive API publications in order, data intact', async () => {
  const c = newClient('c3', { token: connToken(`u3-${RUN}`) });
  try {
    await connected(c);
    const sub = newSub(c, 'live:room1');
    const sctx = await subscribed(sub);
    assert(sctx.recoverable === true && sctx.positioned === true, `live:room1 subscription should be recoverable and positioned (forced recovery), ctx: ${show(sctx)}`);
    assert(sctx.streamPosition && typeof sctx.streamPosition.epoch === 'string' && sctx.streamPosition.epoch !== '', `subscribed ctx should carry a stream position with an epoch, got ${show(sctx.streamPosition)}`);
    assertEqual(sctx.wasRecovering, false, 'first subscribe wasRecovering');
    const payloads = [
      { seq: 1, text: 'hello' },
      { seq: 2, text: 'unicode: héllo wörld 🎉 中文', quote: 'a "quoted" \\ backslash\nnewline' },
      { seq: 3, nested: { list: [1, 2.5, -3, true, false, null, 'x'], empty: {}, arr: [] } },
      { seq: 4, big: 'x'.repeat(4000) },
      { seq: 5, n: 9007199254740991, neg: -0.125 },
    ];
    const mark = sub.rec.mark();
    const positions = [];
    for (const p of payloads) positions.push(await apiPublish('live:room1', p));
    for (const pos of positions) {
      assert(typeof pos.offset === 'number' && pos.offset > 0, `API publish result should have a positive offset, got ${show(pos)}`);
      assert(typeof pos.epoch === 'string' && pos.epoch !== '', `API publish result should have an epoch, got ${show(pos)}`);
      assertEqual(pos.epoch, sctx.streamPosition.epoch, 'API publish epoch vs subscription epoch');
    }
    const pubs = await sub.rec.wait('publication', { mark, n: payloads.length });
    assertEqual(pubs.map(p => p.data), payloads, 'publications (order and data)');
    assertEqual(pubs.map(p => p.offset), positions.map(p => p.offset), 'publication offsets vs API results');
    for (let i = 1; i < pubs.length; i++) {
      assertEqual(pubs[i].offset, pubs[i - 1].offset + 1, `offset of publication ${i + 1}`);
    }
    await sleep(200);
    assertEqual(sub.rec.since(mark, 'publication').length, payloads.length, 'no duplicate publications');

    // A large publication (300 KB, well over one batch) and a burst of 50,
    // in a channel of their own.
    const bulk = newSub(c, 'live:bulk');
    await subscribed(bulk);
    const big = { big: 'y'.repeat(300 * 1024) };
    await apiPublish('live:bulk', big);
    const burst = Array.from({ length: 50 }, (_, i) => ({ burst: i }));
    for (const p of burst) await apiPublish('live:bulk', p);
    const more = await bulk.rec.wait('publication', { n: 1 + burst.length });
    assert(isDeepStrictEqual(more[0].data, big), `300 KB publication arrived altered (length ${JSON.stringify(more[0].data).length})`);
    assertEqual(more.slice(1).map(p => p.data), burst, 'burst of 50 publications (order and data)');
  } finally {
    closeClient(c);
  }
});

// 4
// startStream opens a live stream through the commerce API as a host and
// returns its id: chat is accepted only in the room of a live stream.
async function startStream(title) {
  const res = await fetch(`${URL_HTTP}/v1/streams`, {
    method: 'POST',
    headers: { 'Authorization': `Bearer ${connToken(`host-${RUN}`, { roles: ['host'] })}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ title }),
  });
  const body = await res.json();
  assert(res.status === 201 && body.id, `create stream: ${res.status} ${show(body)}`);
  return body.id;
}

check(4, 'chat published by a client into a live room comes back as chat.message; anonymous may subscribe but not publish (103)', async () => {
  const user = `u4-${RUN}`;
  const c = newClient('c4', { token: connToken(user, { name: 'Bob' }) });
  const anon = newClient('anon');
  try {
    const room = `live:${await startStream('interop chat')}`;
    await connected(c);
    const sub = newSub(c, room);
    await subscribed(sub);
    const mark = sub.rec.mark();
    const data = { text: `hi from the sdk ${RUN}` };
    const res = await withTimeout(sub.publish(data), EVENT_TIMEOUT_MS, 'client publish reply');
    assert(res && typeof res === 'object', `publish should resolve with an object, got ${show(res)}`);
    const [pub] = await sub.rec.wait('publication', { mark });
    const got = pub.data;
    const ok = got && got.type === 'chat.message' && got.data && got.data.text === data.text && got.data.name === 'Bob' && got.data.user_id === user;
    assert(ok, `own chat line should come back as a chat.message with the text and the sender's name, got ${show(got)}`);
    const refused = await expectReject(() => sub.publish({ text: 'x'.repeat(1000) }), 'an over-long chat line');
    assertEqual(errCode(refused), 107, `over-long chat line error code (error ${show(refused)})`);
    assert(pub.info && pub.info.user === user, `client publication should carry the publisher's info (user ${user}), got info ${show(pub.info)}`);
    assert(typeof pub.offset === 'number' && pub.offset > 0, `client publication should have an offset, got ${show(pub.offset)}`);

    // Anonymous: subscribe allowed, receives, publish refused.
    const actx = await connected(anon, 'anonymous client');
    assert(actx.client, 'anonymous connected ctx.client');
    assertEqual(anon.rec.all('subscribed').map(x => x.channel), [], 'anonymous client server-side subscriptions');
    const asub = newSub(anon, 'live:room1');
    await subscribed(asub, 'live:room1 (anonymous)');
    const amark = asub.rec.mark();
    await apiPublish('live:room1', { text: 'to everyone' });
    const [apub] = await asub.rec.wait('publication', { mark: amark });
    assertEqual(apub.data, { text: 'to everyone' }, 'anonymous subscriber publication');
    const err = await expectReject(() => asub.publish({ text: 'anon says hi' }), 'anonymous publish');
    assertEqual(errCode(err), 103, `anonymous publish error code (error ${show(err)})`);
    await sleep(300);
    const leaked = asub.rec.since(amark, 'publication', x => x.data && x.data.text === 'anon says hi');
    assertEqual(leaked.length, 0, 'refused anonymous publication must not be delivered');
    assertEqual(anon.state, 'connected', 'anonymous client state after refused publish');
  } finally {
    closeClient(c);
    closeClient(anon);
  }
});

// 5
check(5, 'history, presence_stats, presence refused for customer (103) and allowed for the stream\'s host', async () => {
  const cust = `u5c-${RUN}`;
  // The full presence list is the stream's own host's to read: the host
  // who started the stream.
  const host = `host-${RUN}`;
  const c = newClient('customer', { token: connToken(cust, { roles: ['customer'] }) });
  const h = newClient('host', { token: connToken(host, { roles: ['host'] }) });
  try {
    const ch = `live:${await startStream('check 5')}`;
    await connected(c);
    await connected(h);
    const sub = newSub(c, ch);
    const hsub = newSub(h, ch);
    await subscribed(sub, `${ch} (customer)`);
    await subscribed(hsub, `${ch} (host)`);

    const payloads = [{ h: 1 }, { h: 2 }, { h: 3 }];
    const positions = [];
    for (const p of payloads) positions.push(await apiPublish(ch, p));
    await sub.rec.wait('publication', { n: payloads.length });

    const hist = await withTimeout(sub.history({ limit: 10 }), EVENT_TIMEOUT_MS, 'history reply');
    assert(Array.isArray(hist.publications), `history publications should be an array, got ${show(hist)}`);
    assert(hist.publications.length > 0 && hist.publications.length <= 10, `history({limit:10}) returned ${hist.publications.length} publications`);
    assertEqual(hist.epoch, positions[0].epoch, 'history epoch');
    assertEqual(hist.offset, positions[positions.length - 1].offset, 'history top offset');
    for (const p of hist.publications) {
      assert(typeof p.offset === 'number' && p.offset > 0, `history publication without offset: ${show(p)}`);
    }
    for (let i = 1; i < hist.publications.length; i++) {
      assertEqual(hist.publications[i].offset, hist.publications[i - 1].offset + 1, `history offsets ascending at ${i}`);
    }
    // Without since, history starts at the oldest kept publication (fewer
    // than the 100 kept were ever published here).
    assertEqual(hist.publications.length, Math.min(10, hist.offset), 'history({limit:10}) length');
    assertEqual(hist.publications[0].offset, 1, 'history({limit:10}) first offset (oldest first)');
    const mine = await withTimeout(sub.history({ limit: 10, since: { offset: positions[0].offset - 1, epoch: hist.epoch } }), EVENT_TIMEOUT_MS, 'history since reply');
    assertEqual(mine.publications.map(p => p.data), payloads, 'history since the offset before this check');
    assertEqual(mine.publications.map(p => p.offset), positions.map(p => p.offset), 'history offsets vs API results');
    const top = await withTimeout(sub.history(), EVENT_TIMEOUT_MS, 'history() reply');
    assertEqual(top, { publications: [], epoch: hist.epoch, offset: hist.offset }, 'history() without a limit (position only)');
    const all = await withTimeout(sub.history({ limit: 2, reverse: true }), EVENT_TIMEOUT_MS, 'reverse history reply');
    assertEqual(all.publications.map(p => p.data), [{ h: 3 }, { h: 2 }], 'history({limit:2, reverse:true})');
    const stale = await expectReject(() => sub.history({ limit: 10, since: { offset: 1, epoch: 'bogus' } }), 'history since a bogus epoch');
    assertEqual(errCode(stale), 112, `history since a bogus epoch error code (error ${show(stale)})`);

    // Earlier clients may still be leaving: wait for the count to settle at two.
    let stats;
    await waitUntil(async () => {
      stats = await withTimeout(c.presenceStats(ch), EVENT_TIMEOUT_MS, 'presence_stats reply');
      return stats.numClients === 2;
    }, 5000, 'presence_stats to count 2 clients').catch(e => fail(`${e.message}; last stats ${show(stats)}`));
    assertEqual(stats, { numClients: 2, numUsers: 2 }, 'presence_stats');

    const err = await expectReject(() => c.presence(ch), 'presence as customer');
    assertEqual(errCode(err), 103, `presence as customer error code (error ${show(err)})`);

    const pres = await withTimeout(h.presence(ch), EVENT_TIMEOUT_MS, 'presence as host');
    const users = Object.values(pres.clients || {}).map(x => x.user).sort();
    assertEqual(users, [cust, host].sort(), 'presence users');
    for (const [id, info] of Object.entries(pres.clients)) {
      assertEqual(info.client, id, 'presence entry keyed by client id');
    }
  } finally {
    closeClient(c);
    closeClient(h);
  }
});

// 6
check(6, 'connection token refresh keeps the connection', async () => {
  const user = `u6-${RUN}`;
  let calls = 0;
  const c = newClient('refresher', {
    token: connToken(user, { ttl: 3 }),
    getToken: async () => {
      calls++;
      return connToken(user, { ttl: 3 });
    },
  });
  try {
    const ctx = await connected(c);
    const mark = c.rec.mark();
    await sleep(6500);
    const bad = c.rec.events.slice(mark).filter(e => ['connecting', 'disconnected'].includes(e.name));
    assertEqual(bad.map(e => `${e.name} ${show(e.ctx)}`), [], 'state changes during the refresh window');
    assertEqual(c.state, 'connected', 'client state after 6.5 s');
    assert(calls >= 1, `getToken should have been called to refresh the connection, calls=${calls}`);
    const errs = c.rec.since(mark, 'error');
    assertEqual(errs.map(show), [], 'errors during refresh');
    // The connection is the same one, and still works.
    assertEqual(c._client, ctx.client, 'client id after refresh');
    const r = await withTimeout(c.rpc('app.state', { state: 'foreground' }), EVENT_TIMEOUT_MS, 'rpc after refresh');
    assertEqual(r.data, { state: 'foreground' }, 'rpc result after refresh');
  } finally {
    closeClient(c);
  }
});

// 6b
check('6b', 'expired token on connect: error 109, getToken, connected', async () => {
  const user = `u6b-${RUN}`;
  let calls = 0;
  const c = newClient('expired', {
    token: connToken(user, { exp: nowSec() - 600 }),
    getToken: async () => {
      calls++;
      return connToken(user);
    },
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
  });
  try {
    await connected(c);
    const errs = c.rec.all('error').filter(e => e.type === 'connect');
    assert(errs.length >= 1, `expected a connect error event with code 109 before connecting, got errors ${show(c.rec.all('error'))}`);
    assertEqual(errs[0].error.code, 109, 'connect error code for an expired token');
    assertEqual(calls, 1, 'getToken calls');
  } finally {
    closeClient(c);
  }
});

// 6c
check('6c', 'token refresh with a slow getToken (1.2 s, like a backend round trip) keeps the connection', async () => {
  // The SDK asks for a new token when the connect reply's ttl runs out; ttl
  // is whole seconds, so less than a second of the token's life may be left
  // by then. Centrifugo gives the client extra time to refresh after the
  // token's expiry before it closes the connection.
  const user = `u6c-${RUN}`;
  let calls = 0;
  const c = newClient('slow-refresher', {
    token: connToken(user, { ttl: 3 }),
    getToken: async () => {
      calls++;
      await sleep(1200);
      return connToken(user, { ttl: 30 });
    },
  });
  try {
    const ctx = await connected(c);
    const mark = c.rec.mark();
    await sleep(5000);
    const bad = c.rec.events.slice(mark).filter(e => ['connecting', 'disconnected'].includes(e.name));
    assertEqual(bad.map(e => `${e.name} ${show(e.ctx)}`), [], 'state changes while a slow getToken refreshed the connection');
    assert(calls >= 1, `getToken should have been called, calls=${calls}`);
    assertEqual(c._client, ctx.client, 'client id after refresh');
  } finally {
    closeClient(c);
  }
});

// 6d
check('6d', 'invalid token (bad signature): disconnected with 3500, no reconnect', async () => {
  const forged = connToken(`u6d-${RUN}`).slice(0, -4) + 'AAAA';
  let calls = 0;
  const c = newClient('forged', {
    token: forged,
    getToken: async () => {
      calls++;
      return forged;
    },
  });
  try {
    c.connect();
    const [d] = await c.rec.wait('disconnected', { ms: 8000 }).catch(e =>
      fail(`${e.message}; events: ${show(c.rec.names())}`));
    assertEqual(d.code, 3500, `disconnected code (ctx ${show(d)})`);
    await sleep(700);
    assertEqual(c.state, 'disconnected', 'client state after an invalid token');
    assertEqual(c.rec.all('connected').length, 0, 'connected events');
    assertEqual(calls, 0, 'getToken calls (an invalid token is final)');
  } finally {
    closeClient(c);
  }
});

// 6e
check('6e', 'token expired 2 s ago: the client gets a fresh token and stays connected, no reconnect loop', async () => {
  // Either answer is one the SDK handles: refuse with 109 (it calls
  // getToken), or accept and keep the connection for the ttl it announces.
  const user = `u6e-${RUN}`;
  let calls = 0;
  const c = newClient('just-expired', {
    token: connToken(user, { exp: nowSec() - 2 }),
    getToken: async () => {
      calls++;
      return connToken(user);
    },
    minReconnectDelay: 100,
    maxReconnectDelay: 300,
  });
  try {
    await connected(c);
    await sleep(2500);
    const drops = c.rec.all('connecting').filter(x => x.code !== 0);
    assertEqual(drops.map(show), [], `reconnects after connecting with a just-expired token (getToken calls ${calls})`);
    assertEqual(c.state, 'connected', 'client state');
  } finally {
    closeClient(c);
  }
});

// 7
check(7, 'RPC app.state round trip; bad data 107; unknown method 104', async () => {
  const c = newClient('rpc', { token: connToken(`u7-${RUN}`) });
  try {
    await connected(c);
    for (const state of ['background', 'foreground']) {
      const r = await withTimeout(c.rpc('app.state', { state }), EVENT_TIMEOUT_MS, `rpc app.state ${state}`);
      assertEqual(r.data, { state }, `rpc app.state ${state} result`);
    }
    const bad = await expectReject(() => c.rpc('app.state', { state: 'sideways' }), 'rpc app.state with a bad state');
    assertEqual(errCode(bad), 107, `rpc app.state bad state error code (error ${show(bad)})`);
    const unknown = await expectReject(() => c.rpc('no.such.method', {}), 'rpc of an unknown method');
    assertEqual(errCode(unknown), 104, `unknown rpc method error code (error ${show(unknown)})`);
    assertEqual(c.state, 'connected', 'client state after rpc errors');
  } finally {
    closeClient(c);
  }
});

// 8
check(8, 'recovery after a forced reconnect (3011): missed publications arrive in order', async () => {
  const user = `u8-${RUN}`;
  const channel = 'live:recovery';
  const personal = `user:#${user}`;
  const c = newClient('recovering', {
    token: connToken(user),
    // Long enough to publish while the client is away.
    minReconnectDelay: 1500,
    maxReconnectDelay: 2500,
  });
  try {
    const first = await connected(c);
    await c.rec.wait('subscribed', { filter: x => x.channel === personal });
    const sub = newSub(c, channel);
    const s0 = await subscribed(sub);
    await apiPublish(channel, { m: 0 });
    await sub.rec.wait('publication');

    const cmark = c.rec.mark();
    const smark = sub.rec.mark();
    await api('disconnect', { user, disconnect: { code: 3011, reason: 'test' } });
    const [cctx] = await c.rec.wait('connecting', { mark: cmark }).catch(e => fail(`no 'connecting' after /api/disconnect: ${e.message}`));
    assertEqual(cctx.code, 3011, `'connecting' code after /api/disconnect (ctx ${show(cctx)})`);
    assertEqual(cctx.reason, 'test', `'connecting' reason after /api/disconnect`);

    const missed = [{ m: 1 }, { m: 2, text: 'ünïcode ✓' }, { m: 3 }];
    const missedPos = [];
    for (const p of missed) missedPos.push(await apiPublish(channel, p));
    const personalPos = await apiPublish(personal, { p: 'while away' });
    assert(c.state === 'connecting', `the client reconnected before the missed publications were made (state ${c.state}); cannot test recovery`);

    const [rs] = await sub.rec.wait('subscribed', { mark: smark, ms: 10000 });
    assert(rs.wasRecovering === true, `resubscribe ctx.wasRecovering should be true, ctx: ${show(rs)}`);
    assert(rs.recovered === true, `resubscribe ctx.recovered should be true, ctx: ${show(rs)}`);
    assert(rs.hasRecoveredPublications === true, `resubscribe should carry the recovered publications, ctx: ${show(rs)}`);
    assertEqual(rs.streamPosition && rs.streamPosition.epoch, s0.streamPosition.epoch, 'epoch after recovery');

    await apiPublish(channel, { m: 4, newer: true });
    const pubs = await sub.rec.wait('publication', { mark: smark, n: 4 });
    assertEqual(pubs.map(p => p.data), [...missed, { m: 4, newer: true }], 'publications after reconnect (missed ones first, in order)');
    assertEqual(pubs.slice(0, 3).map(p => p.offset), missedPos.map(p => p.offset), 'recovered publication offsets');
    await sleep(200);
    assertEqual(sub.rec.since(smark, 'publication').length, 4, 'no duplicates after recovery');

    // The personal channel, subscribed by the server, is recovered on connect.
    const [connCtx] = await c.rec.wait('connected', { mark: cmark });
    assert(connCtx.client && connCtx.client !== first.client, `reconnect should be a new connection, got ${show(connCtx.client)} (first ${show(first.client)})`);
    const [ps] = await c.rec.wait('subscribed', { mark: cmark, filter: x => x.channel === personal });
    assert(ps.wasRecovering === true && ps.recovered === true, `server-side ${personal} should be recovered on reconnect, ctx: ${show(ps)}`);
    const [pp] = await c.rec.wait('publication', { mark: cmark, filter: x => x.channel === personal });
    assertEqual(pp.data, { p: 'while away' }, 'personal publication missed while away');
    assertEqual(pp.offset, personalPos.offset, 'personal publication offset');
  } finally {
    closeClient(c);
  }
});

// 8b
check('8b', 'no recovery when the missed history was removed: recovered=false', async () => {
  const user = `u8b-${RUN}`;
  const channel = 'live:recovery-removed';
  const c = newClient('unrecoverable', {
    token: connToken(user),
    minReconnectDelay: 1500,
    maxReconnectDelay: 2500,
  });
  try {
    await connected(c);
    const sub = newSub(c, channel);
    await subscribed(sub);
    await apiPublish(channel, { m: 0 });
    await sub.rec.wait('publication');

    const cmark = c.rec.mark();
    const smark = sub.rec.mark();
    await api('disconnect', { user, disconnect: { code: 3011, reason: 'test' } });
    await c.rec.wait('connecting', { mark: cmark });
    await apiPublish(channel, { m: 1 });
    await apiPublish(channel, { m: 2 });
    await api('history_remove', { channel });
    assert(c.state === 'connecting', `the client reconnected before history was removed (state ${c.state}); cannot test`);

    const [rs] = await sub.rec.wait('subscribed', { mark: smark, ms: 10000 });
    assert(rs.wasRecovering === true, `resubscribe ctx.wasRecovering should be true, ctx: ${show(rs)}`);
    assert(rs.recovered === false, `two publications were missed and their history removed: resubscribe ctx.recovered must be false, got ${show(rs)}`);

    // The subscription goes on from the server's current position.
    await apiPublish(channel, { m: 3 });
    const [p] = await sub.rec.wait('publication', { mark: smark, filter: x => x.data && x.data.m === 3 });
    assertEqual(p.data, { m: 3 }, 'publication after failed recovery');
  } finally {
    closeClient(c);
  }
});

// 8c
check('8c', 'no recovery from a bogus epoch (since option): recovered=false', async () => {
  const channel = 'live:recovery';
  const c = newClient('bogus-epoch', { token: connToken(`u8c-${RUN}`) });
  try {
    await connected(c);
    const sub = newSub(c, channel, { since: { offset: 1, epoch: 'bogus' } });
    const s = await subscribed(sub);
    assert(s.wasRecovering === true, `subscribe with since should be recovering, ctx: ${show(s)}`);
    assert(s.recovered === false, `subscribe with a bogus epoch must not be recovered, ctx: ${show(s)}`);
    assert(s.hasRecoveredPublications === false, `no publications should come with a failed recovery, ctx: ${show(s)}`);
    assert(s.streamPosition && s.streamPosition.epoch && s.streamPosition.epoch !== 'bogus', `the server's real epoch should come back, got ${show(s.streamPosition)}`);
    const mark = sub.rec.mark();
    await apiPublish(channel, { after: 'bogus' });
    const [p] = await sub.rec.wait('publication', { mark });
    assertEqual(p.data, { after: 'bogus' }, 'publication after a failed recovery');
  } finally {
    closeClient(c);
  }
});

// 9
check(9, `ping/pong keeps the connection across 3 ping periods`, async () => {
  const counter = { pings: 0, pongs: 0 };
  CountingWebSocket.current = counter;
  const c = newClient('pinger', {
    token: connToken(`u9-${RUN}`),
    websocket: CountingWebSocket,
    // Missing pings would surface as a 'no ping' reconnect within a period and a half.
    maxServerPingDelay: Math.max(1000, PING_SECONDS * 750),
  });
  try {
    await connected(c);
    CountingWebSocket.current = null;
    const mark = c.rec.mark();
    await sleep(PING_SECONDS * 3 * 1000 + 1200);
    const bad = c.rec.events.slice(mark).filter(e => ['connecting', 'disconnected'].includes(e.name));
    assertEqual(bad.map(e => `${e.name} ${show(e.ctx)}`), [], 'state changes across three ping periods');
    assertEqual(c.state, 'connected', 'client state after three ping periods');
    assert(counter.pings >= 3, `expected at least 3 server pings in ${PING_SECONDS * 3 + 1.2} s, saw ${counter.pings}`);
    assert(counter.pongs >= 3, `expected the SDK to answer at least 3 pongs, saw ${counter.pongs}`);
  } finally {
    CountingWebSocket.current = null;
    closeClient(c);
  }
});

// 10
check(10, "someone else's personal channel refused (103); order:o1 needs a subscription token", async () => {
  const user = `u10-${RUN}`;
  const c = newClient('c10', { token: connToken(user) });
  try {
    await connected(c);
    const other = newSub(c, `user:#someone-else-${RUN}`);
    await refusedSubscribe(other, 103, "subscribe to another user's personal channel");
    c.removeSubscription(other);

    const unknown = newSub(c, `nowhere:${RUN}`);
    await refusedSubscribe(unknown, 102, 'subscribe to a channel of an unknown namespace');
    c.removeSubscription(unknown);

    const plain = newSub(c, 'order:o1');
    await refusedSubscribe(plain, 103, 'subscribe to order:o1 without a token');
    c.removeSubscription(plain);

    // A subscription token for another channel is refused too.
    const wrong = newSub(c, 'order:o1', { getToken: async () => subToken(user, 'order:o2') });
    await refusedSubscribe(wrong, 103, 'subscribe to order:o1 with a token for order:o2');
    c.removeSubscription(wrong);

    const asked = [];
    const tok = newSub(c, 'order:o1', {
      getToken: async ctx => {
        asked.push(ctx.channel);
        return subToken(user, ctx.channel);
      },
    });
    const s = await subscribed(tok, 'order:o1 with a subscription token');
    assertEqual(asked, ['order:o1'], 'subscription getToken calls (channels)');
    assert(s.recoverable === true, `order:o1 subscription should be recoverable, ctx: ${show(s)}`);
    const mark = tok.rec.mark();
    await apiPublish('order:o1', { status: 'paid' });
    const [p] = await tok.rec.wait('publication', { mark });
    assertEqual(p.data, { status: 'paid' }, 'order:o1 publication');
    assertEqual(c.state, 'connected', 'client state after refused subscriptions');
  } finally {
    closeClient(c);
  }
});

// 11
check(11, 'server API subscribe/unsubscribe reach the SDK as server-side subscriptions', async () => {
  const user = `u11-${RUN}`;
  const channel = `live:pushed-${RUN}`;
  const c = newClient('c11', { token: connToken(user) });
  try {
    await connected(c);
    const mark = c.rec.mark();
    await api('subscribe', { user, channel });
    const [s] = await c.rec.wait('subscribed', { mark, filter: x => x.channel === channel }).catch(e =>
      fail(`no client-level 'subscribed' for ${channel} after /api/subscribe: ${e.message}`));
    assert(s.recoverable === true, `server-side subscription to ${channel} should be recoverable, ctx: ${show(s)}`);
    await apiPublish(channel, { pushed: 1 });
    const [p] = await c.rec.wait('publication', { mark, filter: x => x.channel === channel });
    assertEqual(p.data, { pushed: 1 }, 'publication on the server-side subscription');
    await api('unsubscribe', { user, channel });
    await c.rec.wait('unsubscribed', { mark, filter: x => x.channel === channel }).catch(e =>
      fail(`no client-level 'unsubscribed' for ${channel} after /api/unsubscribe: ${e.message}`));
    const pmark = c.rec.mark();
    await apiPublish(channel, { pushed: 2 });
    await sleep(300);
    assertEqual(c.rec.since(pmark, 'publication', x => x.channel === channel).length, 0, 'publications after /api/unsubscribe');
    assertEqual(c.state, 'connected', 'client state');
  } finally {
    closeClient(c);
  }
});

// 12
check(12, 'a frame over the size limit closes with 1009: the SDK stops (messageSizeLimit)', async () => {
  const c = newClient('c12', { token: connToken(`u12-${RUN}`) });
  try {
    await connected(c);
    const mark = c.rec.mark();
    c.rpc('app.state', { state: 'x'.repeat(128 * 1024) }).catch(() => {});
    const [d] = await c.rec.wait('disconnected', { mark, ms: 8000 }).catch(e =>
      fail(`${e.message}; events: ${show(c.rec.names(mark))} ${show(c.rec.since(mark))}`));
    assertEqual(d.code, 3, `disconnected code (ctx ${show(d)}); 3 is the SDK's messageSizeLimit, from close code 1009`);
  } finally {
    closeClient(c);
  }
});

// 13
check(13, 'short-lived subscription tokens: the SDK refreshes them with sub_refresh and stays subscribed', async () => {
  const user = `u13-${RUN}`;
  const channel = `order:refresh-${RUN}`;
  const TOKEN_TTL = 3; // seconds: the subscribe reply's ttl makes the SDK refresh every 2-3 s
  const c = newClient('c13', { token: connToken(user) });
  try {
    await connected(c);
    const cmark = c.rec.mark();
    const issued = [];
    const sub = newSub(c, channel, {
      getToken: async ctx => {
        issued.push(ctx.channel);
        return subToken(user, ctx.channel, TOKEN_TTL);
      },
    });
    await subscribed(sub, `${channel} with ${TOKEN_TTL} s subscription tokens`);
    assertEqual(issued, [channel], 'getToken calls before the subscription');
    const smark = sub.rec.mark();
    // Two refreshes: the SDK sends sub_refresh when the ttl runs out. A
    // refused sub_refresh would unsubscribe the SDK (non-temporary error),
    // which the state check below catches.
    for (let round = 1; round <= 2; round++) {
      await waitUntil(() => issued.length > round, 8000, `sub_refresh #${round} (getToken calls: ${issued.length})`);
      const mark = sub.rec.mark();
      await apiPublish(channel, { round });
      const [p] = await sub.rec.wait('publication', { mark });
      assertEqual(p.data, { round }, `publication after sub_refresh #${round}`);
    }
    const stateEvents = sub.rec.events.slice(smark).filter(e => ['subscribing', 'unsubscribed', 'subscribed', 'error'].includes(e.name));
    assertEqual(stateEvents.map(e => `${e.name} ${show(e.ctx)}`), [], 'subscription state changes or errors across the refreshes');
    assertEqual(sub.state, 'subscribed', 'subscription state after two refreshes');
    const conn = c.rec.events.slice(cmark).filter(e => ['connecting', 'disconnected'].includes(e.name));
    assertEqual(conn.map(e => `${e.name} ${show(e.ctx)}`), [], 'client state changes across the refreshes');
  } finally {
    closeClient(c);
  }
});

// ---------------------------------------------------------------- encodings, compression, delta

// Transport modes. ws offers permessage-deflate unless told not to, so the
// checks above run compressed JSON; these run the core of the protocol
// (connect, subscribe, publications in order, recovery) in every mode.
const MODES = [
  { name: 'json', protobuf: false, deflate: false },
  { name: 'json+deflate', protobuf: false, deflate: true },
  { name: 'protobuf', protobuf: true, deflate: false },
  { name: 'protobuf+deflate', protobuf: true, deflate: true },
];

// modeSocket returns a BrowserWebSocket class with or without deflate that
// remembers its sockets, so a check can see what the handshake negotiated.
function modeSocket(mode, sockets) {
  return class extends BrowserWebSocket {
    constructor(address, protocols, options) {
      super(address, protocols, { ...options, perMessageDeflate: mode.deflate });
      sockets.push(this);
    }
  };
}

function newModeClient(mode, label, sockets, options = {}) {
  const Ctor = mode.protobuf ? CentrifugeProtobuf : Centrifuge;
  const client = new Ctor(URL_WS, {
    websocket: modeSocket(mode, sockets),
    debug: SDK_DEBUG,
    timeout: 5000,
    ...options,
  });
  client.label = label;
  client.rec = new Recorder(client, ['connecting', 'connected', 'disconnected', 'error', 'subscribed', 'subscribing', 'unsubscribed', 'publication'], label);
  openClients.add(client);
  return client;
}

// pubData returns a publication's data as a value: the protobuf build hands
// out the raw bytes, which hold the JSON the API published.
function pubData(mode, data) {
  return mode.protobuf ? JSON.parse(new TextDecoder().decode(data)) : data;
}

for (const mode of MODES) {
  check(`m-${mode.name}`, `${mode.name}: connect, subscribe, publications in order, recovery after 3011`, async () => {
    const user = `um-${mode.name}-${RUN}`;
    const channel = `live:mode-${mode.name}-${RUN}`;
    const sockets = [];
    const c = newModeClient(mode, `mode-${mode.name}`, sockets, { token: connToken(user), minReconnectDelay: 1500, maxReconnectDelay: 2500 });
    try {
      await connected(c);
      const ws = sockets[sockets.length - 1];
      assertEqual(ws.protocol, mode.protobuf ? 'centrifuge-protobuf' : '', 'negotiated subprotocol');
      assertEqual(ws.extensions.includes('permessage-deflate'), mode.deflate, `permessage-deflate negotiated (extensions ${show(ws.extensions)})`);
      const sub = newSub(c, channel);
      const s0 = await subscribed(sub);
      assert(s0.recoverable === true, `subscription should be recoverable, ctx ${show(s0)}`);
      // Big enough to be compressed past the default threshold.
      const payloads = Array.from({ length: 6 }, (_, i) => ({ seq: i, text: `héllo ${i} `.repeat(i === 3 ? 200 : 1) }));
      const mark = sub.rec.mark();
      for (const p of payloads) await apiPublish(channel, p);
      const pubs = await sub.rec.wait('publication', { mark, n: payloads.length });
      assertEqual(pubs.map(p => pubData(mode, p.data)), payloads, 'publications (order and data)');

      const smark = sub.rec.mark();
      const cmark = c.rec.mark();
      await api('disconnect', { user, disconnect: { code: 3011, reason: 'test' } });
      await c.rec.wait('connecting', { mark: cmark });
      const missed = [{ m: 1 }, { m: 2, text: 'ünïcode ✓' }, { m: 3 }];
      for (const p of missed) await apiPublish(channel, p);
      assert(c.state === 'connecting', `reconnected before the missed publications were made (state ${c.state})`);
      const [rs] = await sub.rec.wait('subscribed', { mark: smark, ms: 10000 });
      assert(rs.wasRecovering === true && rs.recovered === true, `resubscribe should recover, ctx: ${show(rs)}`);
      await apiPublish(channel, { m: 4 });
      const after = await sub.rec.wait('publication', { mark: smark, n: 4 });
      assertEqual(after.map(p => pubData(mode, p.data)), [...missed, { m: 4 }], 'publications after recovery');
      assertEqual(sockets.length, 2, 'sockets opened (one reconnect)');
    } finally {
      closeClient(c);
    }
  });
}

// stockEvent is shaped like flash_sale.stock: each one repeats most of the last.
function stockEvent(i) {
  return { type: 'flash_sale.stock', v: 1, id: `ev_${String(i).padStart(8, '0')}`, data: { flash_sale_id: `fs_${RUN}_0123456789abcdef`, quantity: 500, sold: i, stock_left: 500 - i } };
}

for (const mode of [MODES[1], MODES[2]]) {
  check(`d-${mode.name}`, `${mode.name}: delta: 'fossil' subscription gets correct full data for a run of stock events, across recovery`, async () => {
    const user = `ud-${mode.name}-${RUN}`;
    const channel = `live:delta-${mode.name}-${RUN}`;
    const c = newModeClient(mode, `delta-${mode.name}`, [], { token: connToken(user), minReconnectDelay: 1500, maxReconnectDelay: 2500 });
    try {
      await connected(c);
      const sub = newSub(c, channel, { delta: 'fossil' });
      await subscribed(sub);
      assertEqual(sub._delta_negotiated, true, 'delta negotiated (SubscribeResult.delta)');
      const mark = sub.rec.mark();
      const events = Array.from({ length: 20 }, (_, i) => stockEvent(i + 1));
      for (const e of events) await apiPublish(channel, e);
      const pubs = await sub.rec.wait('publication', { mark, n: events.length });
      assertEqual(pubs.map(p => pubData(mode, p.data)), events, 'publications rebuilt from deltas');
      const st = sub.deltaStats();
      assertEqual(st.numFullPayloads, 1, `full payloads (stats ${show(st)})`);
      assertEqual(st.numDeltaPayloads, events.length - 1, `delta payloads (stats ${show(st)})`);
      assert(st.bytesReceived < st.bytesDecoded / 2, `deltas should save bytes (stats ${show(st)})`);

      const smark = sub.rec.mark();
      const cmark = c.rec.mark();
      await api('disconnect', { user, disconnect: { code: 3011, reason: 'test' } });
      await c.rec.wait('connecting', { mark: cmark });
      const missed = [stockEvent(21), stockEvent(22)];
      for (const e of missed) await apiPublish(channel, e);
      const [rs] = await sub.rec.wait('subscribed', { mark: smark, ms: 10000 });
      assert(rs.recovered === true, `resubscribe should recover, ctx: ${show(rs)}`);
      const more = [stockEvent(23), stockEvent(24), stockEvent(25)];
      for (const e of more) await apiPublish(channel, e);
      const after = await sub.rec.wait('publication', { mark: smark, n: 5 });
      assertEqual(after.map(p => pubData(mode, p.data)), [...missed, ...more], 'publications after recovery');
    } finally {
      closeClient(c);
    }
  });
}

// ---------------------------------------------------------------- runner

async function main() {
  let passed = 0;
  let failed = 0;
  const hard = setTimeout(() => {
    console.log(`interop: run exceeded ${RUN_TIMEOUT_MS} ms, aborting`);
    console.log(`interop: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  }, RUN_TIMEOUT_MS);
  const selected = checks.filter(c => ONLY.length === 0 || ONLY.includes(c.id));
  for (const c of selected) {
    const started = Date.now();
    const label = `${c.id}. ${c.name}`;
    try {
      await withTimeout(c.fn(), CHECK_TIMEOUT_MS, `check ${c.id} to finish`);
      passed++;
      console.log(`ok   ${label} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      const msg = e instanceof CheckError ? e.message : (e && e.stack) || show(e);
      console.log(`FAIL ${label} (${Date.now() - started} ms)\n     ${msg}`);
    }
    for (const client of [...openClients]) closeClient(client);
  }
  clearTimeout(hard);
  console.log(`interop: ${passed} passed, ${failed} failed`);
  // Let close frames go out before leaving.
  await sleep(100);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch(e => {
  console.log(`interop: runner crashed: ${(e && e.stack) || e}`);
  console.log('interop: 0 passed, 1 failed');
  process.exit(1);
});

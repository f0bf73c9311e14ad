// wsdest's JavaScript client, served by wsdest at /_wsdest/client.js: an ES
// module with no dependency and no build step, for browsers and Node.js 22+
// (Node 20 has no global WebSocket: pass one, e.g. the ws package, as the
// WebSocket option). Types: /_wsdest/client.d.ts.
//
//   import { connect } from '<wsdest's address>/_wsdest/client.js';
//   const stream = connect('<wsdest's address>/ws', { token, keys: ['sensor-*'],
//     where: 'value.temperature > 30', fields: ['temperature', 'Tags.location'] });
//   stream.addEventListener('record', (e) => console.log(e.detail.key, e.detail.value));
//
// It always asks for the envelope (it needs the cursor), keeps the cursor of
// the last record delivered and, whenever the connection drops, reconnects
// with jittered exponential backoff and resumes just after that record
// (from=cursor): nothing lost, nothing twice. As a second check it drops a
// message at or before the last one delivered in its partition. A refusal
// (close 1008 other than "too slow" or "too many pings": "no credential: ...",
// "credential not accepted", "credential revoked", "token expired") ends the
// stream: state "closed" and an "error" event, no retry; except that when
// the token is a function, "token expired" reconnects with the token it
// returns next, resuming from the cursor.
//
// The start of the first connection is the caller's (from=, last=, or
// snapshot: the latest record of every key, then live); every later one is
// the resume point (#url), so a snapshot is taken once. Notices act on the
// stream's state in #notice before they are passed on.
//
// A snapshot's records are old records whose cursor is the snapshot point,
// the position at which the stream goes on live: they are delivered without
// the per-partition check (their offsets are behind the point), and the
// snapshot_end notice (whose cursor is the point too) sets each partition's
// floor at the point.
//
// A Quix Timestamp (an integer member "Timestamp" of the value, in
// nanoseconds, beyond a double's 53 bits) is read from the message text and
// given as a BigInt, exact to the nanosecond.

const DEFAULT_MIN_DELAY = 500; // ms before the first reconnect
const DEFAULT_MAX_DELAY = 15000; // ms between reconnects, at most
const STEADY_MS = 10000; // a connection open this long resets the backoff
const RETRYABLE_1008 = new Set(['too slow', 'too many pings']);
const EXPIRED = 'token expired';

/**
 * connect opens a stream of url (ws:, wss:, or http(s): which is mapped to
 * ws(s):; relative to the page in a browser). See client.d.ts.
 */
export function connect(url, options = {}) {
  return new WsdestStream(url, options);
}

/** WsdestEvent is what a stream dispatches: detail, and the message text. */
export class WsdestEvent extends Event {
  constructor(type, detail, text) {
    super(type);
    this.detail = detail;
    this.text = text;
  }
}

export class WsdestStream extends EventTarget {
  /** latest: key -> the newest record of that key (binary keys as "base64:..."). */
  latest = new Map();
  #opts;
  #WS;
  #base; // URL of the subscription, without start position and token
  #state = '';
  #cursor = '';
  #since = ''; // from= for a reconnect before any record: when the first connection opened
  #floors = new Map(); // partition -> [next offset, rows of it delivered] after the last record delivered
  #ws = null;
  #timer = 0;
  #attempt = 0; // reconnects since the last steady connection
  #openedAt = 0;
  #inSnapshot = false; // the connection asked for a snapshot and its snapshot_end has not come

  constructor(url, options = {}) {
    super();
    this.#WS = options.WebSocket || globalThis.WebSocket;
    if (typeof this.#WS !== 'function') {
      throw new TypeError('wsdest client: no WebSocket here (Node.js 20: pass { WebSocket } from the ws package)');
    }
    const u = new URL(url, globalThis.location ? globalThis.location.href : undefined);
    if (u.protocol === 'http:' || u.protocol === 'https:') u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = u.searchParams;
    for (const k of [].concat(options.keys || [])) q.append('key', k);
    // A view: the server filters (where, CEL) and projects (fields) the
    // records; it stays with every reconnect, and resuming stays exact.
    if (options.where) q.set('where', options.where);
    // fields: an array of paths or a comma-separated list; spaces around
    // a path are not part of it.
    const fields = [].concat(options.fields || []).flatMap((f) => String(f).split(','))
      .map((f) => f.trim()).filter(Boolean).join(',');
    if (fields) q.set('fields', fields);
    q.set('envelope', 'true');
    // max_rate is part of the subscription: every attempt asks for it.
    if (options.maxRate !== undefined && options.maxRate !== '') q.set('max_rate', String(options.maxRate));
    // The start position and the token are added per attempt.
    for (const p of ['from', 'last', 'token', 'snapshot']) {
      if (q.has(p) && options[p] === undefined) options = { ...options, [p]: q.get(p) };
      q.delete(p);
    }
    const resumes = (options.from !== undefined && options.from !== '') || (options.last !== undefined && options.last !== '');
    if (snapshotWanted(options.snapshot) && resumes) {
      throw new TypeError('wsdest: snapshot cannot be combined with from or last (a stream that resumes needs its cursor alone)');
    }
    this.#opts = options;
    this.#base = u;
    // Listeners added right after connect() see the first state event.
    queueMicrotask(() => { if (this.#state === '') this.#open(); });
  }

  /** state: connecting, live, reconnecting or closed. */
  get state() { return this.#state || 'connecting'; }

  /** cursor: the cursor of the last record delivered ('' before the first). */
  get cursor() { return this.#cursor; }

  /** close ends the stream: no more events but the state "closed". */
  close() {
    if (this.#state === 'closed') return;
    clearTimeout(this.#timer);
    this.#drop(1000, 'client closed');
    this.#setState('closed', {});
  }

  // #url is the URL of the next attempt: the subscription's own start
  // position on the first connection (and until a record is delivered),
  // from=cursor afterwards; with token, when one is given.
  #url(token) {
    const u = new URL(this.#base);
    const q = u.searchParams;
    const o = this.#opts;
    if (this.#cursor) {
      q.set('from', this.#cursor);
    } else if (this.#since) {
      q.set('from', this.#since);
    } else if (snapshotWanted(o.snapshot)) {
      q.set('snapshot', 'true');
    } else {
      if (o.from !== undefined && o.from !== '') q.set('from', String(o.from));
      if (o.last !== undefined && o.last !== '') q.set('last', String(o.last));
    }
    if (token) q.set('token', token);
    return u.toString();
  }

  // #token is the token of the next attempt: options.token, or what it
  // returns (or resolves to) when it is a function.
  async #token() {
    const t = this.#opts.token;
    return typeof t === 'function' ? t() : t;
  }

  async #open() {
    this.#setState(this.#attempt ? 'reconnecting' : 'connecting', { attempt: this.#attempt, url: this.#url() });
    let token;
    try {
      token = await this.#token();
    } catch (err) {
      if (this.#state !== 'closed') this.#fail(`wsdest client: the token function failed: ${err && err.message}`, 0, '');
      return;
    }
    if (this.#state === 'closed') return; // closed while the token was fetched
    let ws;
    try {
      ws = new this.#WS(this.#url(token));
    } catch (err) {
      this.#fail(`cannot open ${this.#url()}: ${err && err.message}`, 0, '');
      return;
    }
    this.#ws = ws;
    this.#inSnapshot = !this.#cursor && !this.#since && snapshotWanted(this.#opts.snapshot);
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#openedAt = Date.now();
      // A stream that starts live and drops before its first record goes
      // on from the time it opened (this machine's clock), not from the
      // new "latest", which would skip what came meanwhile.
      const from = this.#opts.from;
      if (!this.#cursor && !this.#since && !this.#opts.last && !this.#inSnapshot && (from === undefined || from === '' || from === 'latest')) {
        this.#since = new Date(this.#openedAt).toISOString();
      }
      this.#setState('live', { url: this.#url() });
    };
    ws.onmessage = (ev) => {
      if (this.#ws === ws) this.#message(typeof ev.data === 'string' ? ev.data : String(ev.data));
    };
    ws.onclose = (ev) => { if (this.#ws === ws) this.#closed(ev.code, ev.reason || ''); };
    ws.onerror = () => {}; // onclose follows and says what happened
  }

  #drop(code, reason) {
    const ws = this.#ws;
    this.#ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // A listener stays: the ws package emits "error" for a socket closed
    // while it connects, which without one would end a Node.js process.
    ws.onerror = () => {};
    try { ws.close(code, reason); } catch { /* already closing */ }
  }

  #closed(code, reason) {
    // A drop mid-snapshot resumes from the snapshot point: the keys not
    // received yet do not come; say so (a notice of the client's own).
    if (this.#inSnapshot && this.#cursor) {
      this.#inSnapshot = false;
      const msg = { notice: 'snapshot_incomplete', cursor: this.#cursor };
      this.dispatchEvent(new WsdestEvent('notice', msg, JSON.stringify(msg)));
    }
    const opened = this.#openedAt !== 0;
    const steady = opened && Date.now() - this.#openedAt >= STEADY_MS;
    this.#ws = null;
    this.#openedAt = 0;
    const renew = reason === EXPIRED && typeof this.#opts.token === 'function';
    if (code === 1008 && !RETRYABLE_1008.has(reason) && !renew) {
      this.#fail(`wsdest refused the stream (close 1008 "${reason}")`, code, reason);
      return;
    }
    if (steady) this.#attempt = 0;
    const d = Math.min(this.#opts.maxDelay || DEFAULT_MAX_DELAY, (this.#opts.minDelay || DEFAULT_MIN_DELAY) * 2 ** this.#attempt);
    const delay = Math.round(d / 2 + Math.random() * d / 2);
    this.#attempt++;
    this.#setState('reconnecting', { code, reason, opened, delay, attempt: this.#attempt, url: this.#url() });
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #fail(message, code, reason) {
    this.#drop(1000, '');
    const err = Object.assign(new Error(message), { code, reason });
    this.#setState('closed', { code, reason });
    this.dispatchEvent(new WsdestEvent('error', err));
  }

  #setState(state, detail) {
    this.#state = state;
    this.dispatchEvent(new WsdestEvent('state', { state, ...detail }));
  }

  #message(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.dispatchEvent(new WsdestEvent('error', Object.assign(new Error('wsdest client: a message that is not JSON'), { code: 0, reason: '' }), text));
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    if (typeof msg.notice === 'string') {
      this.#notice(msg, text);
      return;
    }
    const p = msg.partition;
    if (!this.#inSnapshot) {
      const at = positionOf(msg.cursor, p, msg.offset);
      const floor = this.#floors.get(p);
      if (floor !== undefined && (at[0] < floor[0] || at[0] === floor[0] && at[1] <= floor[1])) return; // delivered before
      this.#floors.set(p, at);
    }
    if (typeof msg.cursor === 'string' && msg.cursor) this.#cursor = msg.cursor;
    exactTimestamp(msg, text);
    if (this.#opts.keepLatest !== false) this.latest.set(keyOf(msg.key), msg);
    this.dispatchEvent(new WsdestEvent('record', msg, text));
  }

  // #notice applies what a notice means to the stream's own state before
  // passing it on. gap: the partition goes on at msg.to, nothing to undo.
  // reset: the topic was recreated and its offsets start again, so the
  // per-partition floors and the latest values of the old topic go.
  // snapshot_end: the stream goes on live from the snapshot point (its
  // cursor), where every partition's floor now is.
  #notice(msg, text) {
    if (msg.notice === 'reset') {
      this.#floors.clear();
      this.latest.clear();
    }
    if (msg.notice === 'snapshot_end' && this.#inSnapshot) {
      this.#inSnapshot = false;
      const at = decodeCursor(msg.cursor);
      if (at) {
        this.#cursor = msg.cursor;
        at.next.forEach((next, p) => {
          if (next >= 0) this.#floors.set(p, [next, at.partial === p ? at.rows : 0]);
        });
      }
    }
    this.dispatchEvent(new WsdestEvent('notice', msg, text));
  }
}

// positionOf is where partition p stands after the message at offset: the
// next offset and how many rows of the record there were delivered (the
// rows of one Quix record share an offset). It is read from the message's
// cursor, whose binary form (cursor.go) is: version 1, name hash (4 bytes),
// topic id (8), then uvarints: since, the partition count, each partition's
// next offset + 1, the partly delivered record's partition + 1 (0: none)
// and its rows; a 2-byte checksum. A cursor of another form (or none)
// counts the message as a whole record.
function positionOf(cursor, p, offset) {
  const whole = [offset + 1, 0];
  if (!Number.isInteger(p) || !Number.isInteger(offset)) return whole;
  const at = decodeCursor(cursor);
  if (!at) return whole;
  const next = p < at.next.length ? at.next[p] : -1;
  const rows = at.partial === p ? at.rows : 0;
  if (!(next === offset + 1 && rows === 0 || next === offset && rows > 0)) return whole;
  return [next, rows];
}

// decodeCursor reads a cursor's positions: next[p] is partition p's next
// offset (-1: none), and rows of the record at partial's next offset were
// delivered (partial -1: none). null for a cursor of another form.
function decodeCursor(cursor) {
  if (typeof cursor !== 'string' || !cursor) return null;
  let b;
  try { b = atob(cursor.replace(/-/g, '+').replace(/_/g, '/')); } catch { return null; }
  if (b.charCodeAt(0) !== 1) return null;
  let i = 13, bad = false;
  const uvarint = () => {
    let v = 0, m = 1, c;
    do {
      c = b.charCodeAt(i++);
      if (Number.isNaN(c)) { bad = true; return 0; }
      v += (c & 127) * m;
      m *= 128;
    } while (c & 128);
    return v;
  };
  uvarint(); // since
  const n = uvarint();
  const next = [];
  for (let k = 0; k < n && !bad; k++) next.push(uvarint() - 1);
  const partial = uvarint() - 1;
  const rows = partial >= 0 ? uvarint() : 0;
  if (bad) return null;
  return { next, partial, rows };
}

// snapshotWanted reads the snapshot option (true, or "true" from a URL).
function snapshotWanted(v) {
  return v === true || v === 'true' || v === '1';
}

function keyOf(k) {
  if (k !== null && typeof k === 'object' && typeof k.base64 === 'string') return `base64:${k.base64}`;
  return k;
}

// exactTimestamp replaces an integer value.Timestamp (which JSON.parse has
// rounded to a double) by a BigInt of its digits in the text. Keys and
// header values are strings, in which the pattern cannot occur unescaped,
// so the first match with the same rounded value is the value's own.
const TS_RE = /"Timestamp"\s*:\s*(-?\d+)(?![\d.eE])/g;
function exactTimestamp(msg, text) {
  const v = msg.value;
  if (v === null || typeof v !== 'object' || !Number.isInteger(v.Timestamp)) return;
  if (Number.isSafeInteger(v.Timestamp)) {
    v.Timestamp = BigInt(v.Timestamp);
    return;
  }
  TS_RE.lastIndex = 0;
  for (let m; (m = TS_RE.exec(text));) {
    if (Number(m[1]) === v.Timestamp) {
      v.Timestamp = BigInt(m[1]);
      return;
    }
  }
}

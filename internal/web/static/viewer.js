// wsdest's live viewer. Served by wsdest itself; talks only to the server
// that served it. No build step: a plain browser ES module.
//
// The connection, its reconnects and the exact resume are client.js's, the
// same module any dashboard imports: the page always streams the envelope
// (it carries the key and the cursor), whatever the envelope switch says;
// the switch decides what the log and the snippets show.
//
// Data flow: every record client.js delivers is folded into
// bounded state (latest value per key, a point buffer per charted key and
// field, a ring of raw lines); the DOM and the charts are redrawn at most
// once per animation frame (charts at most CHART_HZ times a second), so a
// fast stream costs parsing, not layout.
//
// Secrets: a token from ?token= or the Token field lives in this tab's
// memory only (no web storage, no cookie).
import { connect } from './client.js';

(() => {
  const MAX_KEYS = 1000; // keys shown in the table; more are counted only
  const MAX_POINTS = 5000; // points kept per charted key and field
  const LOG_KEEP = 2000; // raw messages kept for the log, filter and copy
  const LOG_SHOW = 400; // lines in the log's DOM
  const LOG_LINE_MAX = 2000; // characters shown of one line (copy has all)
  const CHART_HZ = 10; // chart redraws per second, at most
  const LOG_HZ = 10; // log redraws per second under a fast stream
  const AUTO_FIELDS = 2; // numeric fields charted by themselves ...
  const AUTO_KEYS = 8; // ... for this many keys each
  const COLORS = ['#2456c7', '#d1495b', '#1b998b', '#e09f3e', '#7a4eab', '#3d9be9', '#8a6d3b', '#c2469c'];

  const $ = (id) => document.getElementById(id);
  const TRUE = new Set(['true', 'yes', '1']), FALSE = new Set(['false', 'no', '0']);

  // ---- the subscription, from the page URL (the server's own rules) ----

  // fromLocation reads the subscription the way wsdest reads a WebSocket
  // URL: /ws/{key} and /{key} name a key, ?key= adds more, and the query's
  // envelope, last, from, where, fields, max_rate and token pass through. The viewer asks for the
  // envelope unless the URL says otherwise: it is what carries the key.
  function fromLocation(loc) {
    const q = new URLSearchParams(loc.search);
    let path = loc.pathname;
    try { path = decodeURIComponent(path); } catch { /* keep it encoded */ }
    let rest = path === '/ws' || path.startsWith('/ws/') ? path.slice(4) : path.slice(1);
    const keys = rest ? [rest] : [];
    for (const k of q.getAll('key')) if (k) keys.push(k);
    let envelope = true;
    if (q.has('envelope')) {
      const v = q.get('envelope').trim().toLowerCase();
      envelope = TRUE.has(v) ? true : FALSE.has(v) ? false : true;
    }
    return {
      keys, envelope,
      last: q.get('last') || '',
      from: q.get('from') || '',
      where: q.get('where') || '',
      fields: q.get('fields') || '',
      maxRate: q.get('max_rate') || '',
      token: q.get('token') || '',
      tokenInURL: q.has('token'),
    };
  }

  // query builds the query string for sub; withToken adds the token.
  function query(sub, withToken) {
    const q = new URLSearchParams();
    for (const k of sub.keys) q.append('key', k);
    q.set('envelope', sub.envelope ? 'true' : 'false');
    if (sub.last) q.set('last', sub.last);
    if (sub.from) q.set('from', sub.from);
    if (sub.where) q.set('where', sub.where);
    if (sub.fields) q.set('fields', sub.fields);
    if (sub.maxRate) q.set('max_rate', sub.maxRate);
    if (withToken && sub.token) q.set('token', sub.token);
    return q.toString();
  }

  const wsBase = () => (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;

  // ---- state (written by the stream's events, read by render) ----

  let sub = fromLocation(location);
  let stream = null, everLive = false, isLive = false;
  // The viewer opens full: a subscription without from= or last= asks for
  // a snapshot (the latest record of every key), unless a first attempt
  // with it could not even open (a server with SNAPSHOT=false answers 400,
  // which a browser cannot tell from a network failure): then this
  // subscription goes on without, and the next one asks again.
  let snapshotAsked = false;
  let total = 0, bytes = 0, lastTotal = 0, rate = 0, notices = 0, lastTopic = '';
  const keys = new Map(); // key -> {count, time, fields: Map(name -> {text, num, el}), dirty, cells (rebuild them), row}
  let droppedKeys = 0;
  const series = new Map(); // "key\0field" -> {key, field, xs: [], ys: []}
  const charted = new Map(); // "key\0field" -> true (on) | false (user turned it off)
  const autoFields = []; // the first numeric field names seen
  const charts = new Map(); // field -> {el, plot, keys: [], dirty}
  let chartsDirty = false, tableDirty = false, lastChartDraw = 0, lastLogDraw = 0;
  const log = []; // ring of {text, cls}
  let logStart = 0; // index in log of the oldest entry
  let logPending = 0; // entries added since the last render
  let logRebuild = true, pausedSkipped = 0;
  let frame = 0;

  // ---- connection ----

  function setState(cls, text) {
    const el = $('conn');
    el.className = `state state-${cls}`;
    el.textContent = text;
  }
  function showAlert(text) { const a = $('alert'); a.textContent = text; a.hidden = false; }
  function hideAlert() { $('alert').hidden = true; }

  // subscribe (re)starts the stream for sub, with a snapshot unless
  // noSnapshot (the fallback of this subscription alone: the next one asks
  // again). Events of a stream that was replaced are ignored.
  function subscribe(noSnapshot = false) {
    if (stream) stream.close();
    everLive = false;
    snapshotAsked = !sub.from && !sub.last && !noSnapshot;
    const s = connect(`${wsBase()}/ws`, { keys: sub.keys, from: sub.from, last: sub.last, where: sub.where, fields: sub.fields, maxRate: sub.maxRate, token: sub.token, keepLatest: false, snapshot: snapshotAsked });
    stream = s;
    s.addEventListener('state', (ev) => { if (stream === s) onState(ev.detail); });
    s.addEventListener('record', (ev) => { if (stream === s) { onRecord(ev.detail, ev.text); schedule(); } });
    s.addEventListener('notice', (ev) => { if (stream === s) { onNotice(ev.detail, ev.text); schedule(); } });
    s.addEventListener('error', (ev) => { if (stream === s) { onError(ev.detail, ev.text); schedule(); } });
  }

  function showURL(url) { if (url) $('ws-url').textContent = url + (sub.token ? '&token=•••' : ''); }

  function onState(d) {
    showURL(d.url);
    isLive = d.state === 'live';
    if (d.state === 'connecting') {
      setState('connecting', 'connecting');
    } else if (d.state === 'live') {
      everLive = true;
      setState('open', 'connected');
      hideAlert();
    } else if (d.state === 'reconnecting' && d.delay === undefined) {
      setState('reconnecting', `reconnecting (attempt ${d.attempt + 1})`);
    } else if (d.state === 'reconnecting' && snapshotAsked && !everLive && !d.opened) {
      subscribe(true);
      return;
    } else if (d.state === 'reconnecting') {
      const why = d.code === 1006 ? (everLive ? 'connection lost' : 'cannot connect')
        : `closed ${d.code}${d.reason ? ` "${d.reason}"` : ''}`;
      setState('reconnecting', `${why}: reconnecting in ${(d.delay / 1000).toFixed(1)} s`);
      if (d.code === 1008 && d.reason === 'too slow') {
        showAlert('wsdest closed this tab for falling behind ("too slow"); it reconnects by itself. A narrower subscription helps.');
      }
    }
  }

  // onError: a refusal ends the stream (retrying the same token cannot
  // help); a message that is not JSON is logged like a notice.
  function onError(err, text) {
    if (text !== undefined) {
      total++;
      bytes += text.length;
      logPush(text, 'notice');
      return;
    }
    if (err.code !== 1008) {
      setState('unauthorized', 'stopped');
      showAlert(err.message);
      return;
    }
    const credential = err.reason.startsWith('no credential') || err.reason === 'credential not accepted';
    setState('unauthorized', credential ? 'unauthorized' : `refused: ${err.reason}`);
    // A 401 page load means wsdest asked for HTTP Basic and the browser
    // has none to send (the prompt was cancelled).
    const nav = performance.getEntriesByType('navigation')[0];
    const basic = nav && nav.responseStatus === 401;
    showAlert(!credential
      ? `wsdest refused this stream (close 1008 "${err.reason}"). Change the subscription or the token and press Subscribe.`
      : sub.token
        ? 'wsdest refused this token (close 1008 "credential not accepted"). Enter a valid API key in the Token field and press Subscribe.'
        : basic
          ? 'This wsdest requires a user name and password (HTTP Basic) or an API key: reload the page to be asked for the password, or enter an API key in the Token field and press Subscribe.'
          : 'This wsdest requires an API key: add ?token=API_KEY to the page URL, or enter it in the Token field and press Subscribe.');
    $('f-token').focus();
  }

  // ---- messages ----

  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  function keyText(k) {
    if (k === null || k === undefined) return '(null key)';
    if (typeof k === 'string') return k;
    if (isObj(k) && typeof k.base64 === 'string') return `base64:${k.base64}`;
    return JSON.stringify(k);
  }

  // What a notice does to the page besides being counted and logged, by
  // its "notice" member; a notice without an entry here is only logged.
  const noticeActions = {
    reset: () => showAlert('The topic was deleted and created again: the stream starts again from its first record.'),
    // wsdest says when the data stops (the Kafka broker or the topic is
    // gone) and when it flows again; the connection itself stays open.
    unavailable: (n) => {
      const why = { broker_unreachable: 'Kafka broker unreachable', topic_missing: 'topic missing' }[n.reason] || String(n.reason || 'unknown');
      setState('unavailable', `data unavailable: ${why}`);
    },
    available: () => { if (isLive) setState('open', 'connected'); },
  };

  function onNotice(n, text) {
    total++;
    bytes += text.length;
    notices++;
    logPush(text, 'notice'); // notices are not records: never charted
    const act = noticeActions[n.notice];
    if (act) act(n);
  }

  function onRecord(msg, text) {
    total++;
    bytes += text.length;
    lastTopic = msg.topic;
    logPush(sub.envelope ? text : plainText(msg.value), '');
    record(keyText(msg.key), msg.value, timeOf(msg.value, msg.timestamp));
  }

  // plainText is the value as a plain client (envelope=false) gets it;
  // the BigInt of a Quix Timestamp is written back as its digits.
  const BIG = '\u2063';
  const plainText = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? BIG + x : x))
    .replace(/"\u2063(-?\d+)"/g, '$1');

  // timeOf returns {x: seconds since the epoch (for the chart), label}.
  // A Quix Timestamp is in nanoseconds, beyond a double's 2^53: client.js
  // gives it as a BigInt, so the label keeps every nanosecond. Without
  // one, the Kafka timestamp (ms) of the envelope, and without that, the
  // time of arrival.
  function timeOf(value, kafkaMs) {
    const ts = isObj(value) ? value.Timestamp : undefined;
    if (typeof ts === 'bigint') return fromEpochInteger(ts, '');
    if (typeof ts === 'number' && Number.isFinite(ts)) return fromSeconds(ts / unitOf(Math.abs(ts)), '');
    if (typeof kafkaMs === 'number') return fromSeconds(kafkaMs / 1000, ' (Kafka)');
    return fromSeconds(Date.now() / 1000, ' (arrival)');
  }

  // unitOf guesses the unit of an epoch integer by its size: ns, µs, ms
  // or s (Quix writes ns; some producers write ms).
  function unitOf(abs) { return abs >= 1e17 ? 1e9 : abs >= 1e14 ? 1e6 : abs >= 1e11 ? 1e3 : 1; }

  function fromEpochInteger(n, suffix) {
    const abs = n < 0n ? -n : n;
    const unit = BigInt(unitOf(Number(abs)));
    const ns = n * (1000000000n / unit);
    const sec = ns / 1000000000n, frac = ns % 1000000000n;
    if (ns < 0n) return fromSeconds(Number(ns / 1000n) / 1e6, suffix);
    const d = new Date(Number(sec) * 1000);
    const label = Number.isNaN(d.getTime()) ? n.toString()
      : `${d.toISOString().slice(0, 19)}.${frac.toString().padStart(9, '0')}Z${suffix}`;
    return { x: Number(ns / 1000n) / 1e6, label };
  }

  function fromSeconds(s, suffix) {
    const d = new Date(s * 1000);
    return { x: s, label: Number.isNaN(d.getTime()) ? String(s) : d.toISOString() + suffix };
  }

  // fieldsOf flattens a value one level deep: {"Tags":{"a":1}} gives Tags.a.
  function fieldsOf(value, out) {
    if (!isObj(value)) { out.push(['value', value]); return; }
    for (const name in value) {
      if (name === 'Timestamp') continue;
      const v = value[name];
      if (isObj(v)) {
        for (const n2 in v) out.push([`${name}.${n2}`, v[n2]]);
      } else {
        out.push([name, v]);
      }
    }
  }

  function short(v) {
    if (typeof v === 'string') return v.length > 80 ? `${v.slice(0, 77)}…` : v;
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}…` : s;
  }

  const scratch = [];
  function record(key, value, t) {
    let k = keys.get(key);
    if (!k) {
      if (keys.size >= MAX_KEYS) { droppedKeys++; tableDirty = true; return; }
      k = { count: 0, time: '', fields: new Map(), dirty: true, cells: true, row: null };
      keys.set(key, k);
      tableDirty = true;
    }
    k.count++;
    k.time = t.label;
    k.dirty = true;
    scratch.length = 0;
    fieldsOf(value, scratch);
    for (const [name, v] of scratch) {
      const num = typeof v === 'number' && Number.isFinite(v);
      let f = k.fields.get(name);
      if (!f) {
        f = { text: '', num, el: null };
        k.fields.set(name, f);
        k.cells = tableDirty = true; // a new field: the row's cells change
        if (num) autoChart(key, name);
      }
      f.text = short(v);
      f.num = num;
      if (num) {
        const id = `${key}\0${name}`;
        if (charted.get(id)) addPoint(id, t.x, v);
      }
    }
  }

  function autoChart(key, field) {
    const id = `${key}\0${field}`;
    if (charted.has(id)) return;
    if (!autoFields.includes(field)) {
      if (autoFields.length >= AUTO_FIELDS) return;
      autoFields.push(field);
    }
    const c = charts.get(field);
    if (c && c.keys.length >= AUTO_KEYS) return;
    setCharted(key, field, true);
  }

  function setCharted(key, field, on) {
    const id = `${key}\0${field}`;
    charted.set(id, on);
    let c = charts.get(field);
    if (on) {
      if (!series.has(id)) series.set(id, { key, field, xs: [], ys: [] });
      if (!c) { c = { el: null, plot: null, keys: [], dirty: true }; charts.set(field, c); }
      if (!c.keys.includes(key)) c.keys.push(key);
      c.rebuild = true;
    } else {
      series.delete(id);
      if (c) {
        c.keys = c.keys.filter((k) => k !== key);
        c.rebuild = true;
      }
    }
    if (c) c.dirty = true;
    chartsDirty = tableDirty = true;
    const k = keys.get(key);
    if (k) k.dirty = k.cells = true;
  }

  // addPoint appends to a series kept sorted by x (records of one key come
  // in order; a late one is inserted in place) and bounded to MAX_POINTS.
  function addPoint(id, x, y) {
    const s = series.get(id);
    if (!s) return;
    const n = s.xs.length;
    if (n === 0 || x >= s.xs[n - 1]) {
      s.xs.push(x); s.ys.push(y);
    } else {
      const i = lowerBound(s.xs, x);
      s.xs.splice(i, 0, x); s.ys.splice(i, 0, y);
    }
    if (s.xs.length > MAX_POINTS * 1.25) { // trim in chunks: cheap on average
      const cut = s.xs.length - MAX_POINTS;
      s.xs.splice(0, cut); s.ys.splice(0, cut);
    }
    const c = charts.get(s.field);
    if (c) c.dirty = true;
    chartsDirty = true;
  }

  function lowerBound(a, x) {
    let lo = 0, hi = a.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function logPush(text, cls) {
    if ($('f-pause').checked) { pausedSkipped++; return; }
    if (log.length < LOG_KEEP) log.push({ text, cls });
    else { log[logStart] = { text, cls }; logStart = (logStart + 1) % LOG_KEEP; }
    logPending++;
  }
  function logEntries() { return log.slice(logStart).concat(log.slice(0, logStart)); }

  // ---- rendering, once per animation frame ----

  function schedule() { if (!frame) frame = requestAnimationFrame(render); }

  function render(now) {
    frame = 0;
    renderTable();
    // A fast stream scrolls the log faster than anyone reads: redraw it at
    // most LOG_HZ times a second once many lines are waiting.
    if (logRebuild || logPending <= 20 || now - lastLogDraw >= 1000 / LOG_HZ) { lastLogDraw = now; renderLog(); } else schedule();
    if (chartsDirty) {
      if (now - lastChartDraw >= 1000 / CHART_HZ) { lastChartDraw = now; renderCharts(); } else schedule();
    }
  }

  function renderTable() {
    const tbody = $('latest').tBodies[0];
    if (tableDirty) {
      tableDirty = false;
      for (const [key, k] of keys) {
        if (!k.row) {
          k.row = tbody.insertRow();
          const kc = k.row.insertCell(); kc.className = 'key'; kc.textContent = key;
          k.row.insertCell().className = 'count';
          k.row.insertCell().className = 'time';
          k.row.insertCell().className = 'fields';
        }
        const cell = k.row.cells[3];
        if (k.cells) {
          k.cells = false;
          k.dirty = true;
          cell.replaceChildren();
          for (const [name, f] of k.fields) {
            const span = document.createElement('span');
            const id = `${key}\0${name}`;
            span.className = `field${f.num ? ' num' : ''}${charted.get(id) ? ' charted' : ''}`;
            if (f.num) { span.dataset.key = key; span.dataset.field = name; span.title = 'click to chart'; }
            const n = document.createElement('span'); n.className = 'name'; n.textContent = `${name} `;
            const v = document.createElement('span'); v.className = 'v';
            span.append(n, v);
            f.el = v;
            cell.append(span);
          }
        }
      }
      $('keys-count').textContent = `${keys.size} key${keys.size === 1 ? '' : 's'}${droppedKeys ? ` (${droppedKeys} records of further keys not shown)` : ''}`;
    }
    for (const k of keys.values()) {
      if (!k.dirty || !k.row) continue;
      k.dirty = false;
      k.row.cells[1].textContent = k.count;
      k.row.cells[2].textContent = k.time;
      for (const f of k.fields.values()) if (f.el && f.el.textContent !== f.text) f.el.textContent = f.text;
    }
  }

  function matches(e) {
    const f = $('f-filter').value;
    return !f || e.text.includes(f);
  }

  function lineNode(e) {
    const span = document.createElement('span');
    if (e.cls) span.className = e.cls;
    span.textContent = (e.text.length > LOG_LINE_MAX ? `${e.text.slice(0, LOG_LINE_MAX)}…` : e.text) + '\n';
    return span;
  }

  function renderLog() {
    const pre = $('log');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (logRebuild || logPending > LOG_SHOW) {
      logRebuild = false;
      const shown = logEntries().filter(matches).slice(-LOG_SHOW);
      const frag = document.createDocumentFragment();
      for (const e of shown) frag.append(lineNode(e));
      pre.replaceChildren(frag);
    } else if (logPending > 0) {
      const n = log.length;
      const frag = document.createDocumentFragment();
      for (let i = n - logPending; i < n; i++) {
        const e = log[(logStart + i) % n];
        if (matches(e)) frag.append(lineNode(e));
      }
      pre.append(frag);
      while (pre.childElementCount > LOG_SHOW) pre.firstChild.remove();
    }
    logPending = 0;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
    $('log-info').textContent = (notices ? `${notices} notice${notices === 1 ? '' : 's'} · ` : '') +
      ($('f-pause').checked ? `paused, ${pausedSkipped} not logged` : `last ${Math.min(log.length, LOG_SHOW)} of ${total}`);
  }

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function renderCharts() {
    chartsDirty = false;
    const box = $('charts');
    const windowS = Number($('f-window').value);
    for (const [field, c] of charts) {
      if (c.keys.length === 0) {
        if (c.plot) { c.plot.destroy(); c.plot = null; }
        if (c.el) { c.el.remove(); c.el = null; }
        charts.delete(field);
        continue;
      }
      if (!c.dirty && !c.rebuild) continue;
      c.dirty = false;
      const data = chartData(field, c.keys, windowS, Math.max(200, box.clientWidth - 70));
      if (!c.el) {
        c.el = document.createElement('div');
        c.el.className = 'chart';
        const h = document.createElement('h3'); h.textContent = field;
        c.el.append(h);
        box.append(c.el);
      }
      if (c.rebuild || !c.plot) {
        c.rebuild = false;
        if (c.plot) c.plot.destroy();
        const fg = cssVar('--fg') || '#000', grid = cssVar('--line') || '#ddd';
        const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
        c.plot = new uPlot({
          width: Math.max(200, box.clientWidth - 4),
          height: 180,
          scales: { x: { time: true } },
          axes: [axis, { ...axis, size: 60 }],
          series: [{ label: 'time', value: (u, v) => (v == null ? '' : new Date(v * 1000).toISOString().slice(11, 23)) },
            ...c.keys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
          legend: { live: true },
        }, data, c.el);
      } else {
        c.plot.setData(data);
      }
    }
    $('charts-empty').hidden = charts.size > 0;
  }

  // chartData builds uPlot's aligned data for one chart, over the window
  // that ends at the newest point (data time, so a replay of older records
  // shows too). One series is drawn point for point while it is small;
  // otherwise x is cut into at most one column per pixel and each series
  // keeps its last value per column: the cost is bounded by the points in
  // the window, with no sort, however many keys and records there are.
  function chartData(field, chartKeys, windowS, width) {
    const ss = chartKeys.map((k) => series.get(`${k}\0${field}`)).filter(Boolean);
    let end = -Infinity;
    for (const s of ss) if (s.xs.length) end = Math.max(end, s.xs[s.xs.length - 1]);
    let start = end - windowS;
    const from = ss.map((s) => lowerBound(s.xs, start));
    if (ss.length === 1 && ss[0].xs.length - from[0] <= width) return [ss[0].xs.slice(from[0]), ss[0].ys.slice(from[0])];
    // Columns span the data present, not an empty window before it.
    let first = end;
    ss.forEach((s, i) => { if (from[i] < s.xs.length) first = Math.min(first, s.xs[from[i]]); });
    start = Math.max(start, first);
    const cols = Math.max(10, Math.min(1000, Math.floor(width)));
    const step = Math.max(end - start, 1e-6) / cols;
    const xs = new Array(cols + 1);
    for (let c = 0; c <= cols; c++) xs[c] = start + c * step;
    const out = [xs];
    ss.forEach((s, i) => {
      const ys = new Array(cols + 1).fill(null);
      for (let j = from[i]; j < s.xs.length; j++) ys[Math.min(cols, Math.floor((s.xs[j] - start) / step))] = s.ys[j];
      out.push(ys);
    });
    return out;
  }

  // ---- once a second: rate and totals ----

  setInterval(() => {
    rate = total - lastTotal;
    lastTotal = total;
    $('rate').textContent = `${rate.toLocaleString()} records/s`;
    $('totals').textContent = `${total.toLocaleString()} records · ${(bytes / 1024).toFixed(0)} KiB`;
    $('topic').textContent = lastTopic ? `topic ${lastTopic}` : '';
    if (chartsDirty) schedule();
  }, 1000);

  // ---- the subscription form and snippets ----

  function fillForm() {
    $('f-keys').value = sub.keys.join(', ');
    $('f-envelope').checked = sub.envelope;
    $('f-start').value = sub.last ? 'last' : sub.from ? 'from' : '';
    if (sub.last) $('f-last').value = sub.last;
    $('f-from').value = sub.from;
    $('f-where').value = sub.where;
    $('f-fields').value = sub.fields;
    $('f-maxrate').value = sub.maxRate;
    $('f-token').value = sub.token;
    startFields();
  }
  function startFields() {
    $('f-last').hidden = $('f-start').value !== 'last';
    $('f-from').hidden = $('f-start').value !== 'from';
  }

  function resetData() {
    keys.clear(); series.clear(); charted.clear(); autoFields.length = 0; droppedKeys = 0;
    for (const c of charts.values()) { if (c.plot) c.plot.destroy(); if (c.el) c.el.remove(); }
    charts.clear();
    $('latest').tBodies[0].replaceChildren();
    log.length = 0; logStart = 0; logPending = 0; logRebuild = true;
    tableDirty = chartsDirty = true;
  }

  // checkView asks the server whether next's view (where, fields) is one
  // it accepts: a WebSocket refused before the upgrade reports nothing
  // but a failed connection, while the same request over SSE answers 400
  // with the reason (the position of a syntax error, the limit passed).
  // The stream is dropped as soon as its head arrives, and asks for no
  // start position (no last=, no from=), so that it starts no catch-up.
  // It resolves to the reason, '' when the view is accepted or the answer
  // says nothing.
  async function checkView(next) {
    if (!next.where && !next.fields) return '';
    const ac = new AbortController();
    try {
      const r = await fetch(`/sse?${query({ ...next, last: '', from: '' }, true)}`, { signal: ac.signal, headers: { Accept: 'text/event-stream' } });
      if (r.status === 400) return (await r.text()).trim();
      return '';
    } catch {
      return '';
    } finally {
      ac.abort();
    }
  }

  $('sub-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const start = $('f-start').value;
    const last = start === 'last' ? $('f-last').value.trim() : '';
    if (last && !/^[1-9]\d*$/.test(last)) { showAlert('last N: a whole number of records, at least 1.'); return; }
    const maxRate = $('f-maxrate').value.trim();
    if (maxRate && !(Number(maxRate) >= 0.1 && Number(maxRate) <= 1000)) {
      showAlert('Max rate: records per key per second, from 0.1 to 1000 (empty: every record).');
      return;
    }
    const token = $('f-token').value;
    const next = {
      keys: $('f-keys').value.split(',').map((s) => s.trim()).filter(Boolean),
      envelope: $('f-envelope').checked,
      last,
      from: start === 'from' ? $('f-from').value.trim() : '',
      where: $('f-where').value.trim(),
      fields: $('f-fields').value.split(',').map((s) => s.trim()).filter(Boolean).join(','),
      maxRate,
      token,
      tokenInURL: sub.tokenInURL && token === sub.token,
    };
    const refused = await checkView(next);
    if (refused) { showAlert(`The server refused this view: ${refused}`); return; }
    sub = next;
    // The page URL follows the subscription, so it can be shared or
    // reloaded; a token typed into the field never goes into it.
    history.replaceState(null, '', `/?${query(sub, sub.tokenInURL)}`);
    hideAlert();
    resetData();
    subscribe();
    snippet();
    schedule();
  });
  $('f-start').addEventListener('change', startFields);
  $('f-filter').addEventListener('input', () => { logRebuild = true; schedule(); });
  $('f-pause').addEventListener('change', () => { pausedSkipped = 0; logRebuild = true; schedule(); });
  $('f-window').addEventListener('change', () => { for (const c of charts.values()) c.dirty = true; chartsDirty = true; schedule(); });
  $('b-clear').addEventListener('click', () => { log.length = 0; logStart = 0; logPending = 0; logRebuild = true; schedule(); });
  $('b-copy').addEventListener('click', () => copy(logEntries().filter(matches).map((e) => e.text).join('\n'), $('b-copy')));
  $('latest').addEventListener('click', (ev) => {
    const f = ev.target.closest('.field.num');
    if (!f) return;
    setCharted(f.dataset.key, f.dataset.field, !charted.get(`${f.dataset.key}\0${f.dataset.field}`));
    schedule();
  });

  async function copy(text, button) {
    const old = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'copied';
    } catch {
      // Not a secure context (plain http to another host): the old way.
      const ta = document.createElement('textarea');
      ta.value = text;
      document.body.append(ta);
      ta.select();
      const ok = document.execCommand('copy');
      ta.remove();
      button.textContent = ok ? 'copied' : 'copy failed';
    }
    setTimeout(() => { button.textContent = old; }, 1200);
  }

  // Snippets never show the token: they read it from WSDEST_TOKEN.
  let snippetKind = 'js';
  function snippet() {
    const q = query(sub, false);
    const ws = `${wsBase()}/ws?${q}`;
    const sse = `${location.protocol}//${location.host}/sse?${q}`;
    const tok = sub.token !== '';
    const opts = [];
    if (sub.keys.length) opts.push(`keys: ${JSON.stringify(sub.keys)}`);
    if (sub.last) opts.push(`last: ${sub.last}`);
    if (sub.from) opts.push(`from: ${JSON.stringify(sub.from)}`);
    if (sub.where) opts.push(`where: ${JSON.stringify(sub.where)}`);
    if (sub.fields) opts.push(`fields: ${JSON.stringify(sub.fields.split(','))}`);
    if (sub.maxRate) opts.push(`maxRate: ${Number(sub.maxRate)}`);
    if (tok) opts.push('token: API_KEY');
    const texts = {
      js: `// In a <script type="module"> of a page served over http(s): wsdest's own client\n` +
        `// reconnects and resumes by itself, nothing lost or repeated.\n` +
        `import { connect } from '${location.protocol}//${location.host}/_wsdest/client.js';\n\n` +
        (tok ? `const API_KEY = 'your_api_key'; // one of wsdest's AUTH_API_KEYS\n` : '') +
        `const stream = connect('${wsBase()}/ws'${opts.length ? `, { ${opts.join(', ')} }` : ''});\n` +
        `stream.addEventListener('record', (e) => console.log(e.detail.key, e.detail.value));\n` +
        `stream.addEventListener('notice', (e) => console.warn('notice', e.detail));\n` +
        `stream.addEventListener('error', (e) => console.error(e.detail.message));`,
      node: `// client.mjs: Node 22+ has WebSocket built in; on Node 20 first: npm install ws\n` +
        `const WebSocket = globalThis.WebSocket ?? (await import('ws')).default;\n` +
        `const url = '${ws}'${tok ? " + '&token=' + encodeURIComponent(process.env.WSDEST_TOKEN)" : ''};\n` +
        `const socket = new WebSocket(url);\n` +
        `socket.onmessage = (event) => console.log(JSON.parse(event.data));\n` +
        `socket.onclose = (event) => console.log('closed', event.code, event.reason);`,
      python: `# pip install websockets\nimport asyncio${tok ? ', os, urllib.parse' : ''}, json, websockets\n\n` +
        `URL = "${ws}"${tok ? ' + "&token=" + urllib.parse.quote(os.environ["WSDEST_TOKEN"])' : ''}\n\n` +
        `async def main():\n    async with websockets.connect(URL) as ws:\n` +
        `        async for message in ws:\n            print(json.loads(message))\n\nasyncio.run(main())`,
      curl: `# Server-Sent Events: the same subscription over plain HTTP\n` +
        `curl -N '${sse}'${tok ? ' -H "Authorization: Bearer $WSDEST_TOKEN"' : ''}`,
      websocat: `websocat '${ws}'${tok ? ' -H "Authorization: Bearer $WSDEST_TOKEN"' : ''}`,
    };
    $('snippet').textContent = texts[snippetKind];
    for (const b of document.querySelectorAll('.tab')) b.classList.toggle('active', b.dataset.snippet === snippetKind);
  }
  for (const b of document.querySelectorAll('.tab')) {
    b.addEventListener('click', () => { snippetKind = b.dataset.snippet; snippet(); });
  }
  $('b-copy-snippet').addEventListener('click', () => copy($('snippet').textContent, $('b-copy-snippet')));
  addEventListener('resize', () => {
    const w = Math.max(200, $('charts').clientWidth - 4);
    for (const c of charts.values()) if (c.plot) c.plot.setSize({ width: w, height: 180 });
  });

  // For tests and the curious: a read-only view of the viewer's state.
  Object.defineProperty(window, 'wsdestViewer', {
    value: Object.freeze({
      get state() { return $('conn').textContent; },
      get total() { return total; },
      get rate() { return rate; },
      get keys() { return [...keys.keys()]; },
      get charts() { return [...charts.keys()]; },
      get notices() { return notices; },
    }),
  });

  fillForm();
  snippet();
  subscribe();
})();

// wsdest's JavaScript client (/_wsdest/client.js) keeping every record,
// exactly once and in partition order, across connection cuts and restarts
// of wsdest, in Debian's Chromium and in this machine's Node (20: with the
// ws package as its WebSocket). The page is served from another origin
// than wsdest (as a dashboard would be), so the module import is a CORS
// request.
//
//   node client.mjs --bin WSDEST --broker HOST:PORT --port P --log FILE --env "K=V\n..."
//                   --auth-port P2 --example FILE --work DIR
//
// The wsdest under test runs on P with the dev broker at HOST:PORT (which
// outlives it); the page and Node reach it through a TCP proxy that can cut
// every connection. P2 is a wsdest with AUTH_API_KEYS set (a wrong token
// must end the stream, with no retries). FILE is the example page of the
// docs, with its address already replaced. Prints PASS/FAIL lines; exit
// status 1 if any failed.

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket, { WebSocketServer } from 'ws';
import { Checks, WsdestProcess, launchChromium } from './lib.mjs';

const TIMEOUT = 20_000; // ms any single wait may take
const { values: opts } = parseArgs({
  options: {
    bin: { type: 'string' }, broker: { type: 'string' }, port: { type: 'string' }, log: { type: 'string' },
    env: { type: 'string' }, 'auth-port': { type: 'string' }, example: { type: 'string' }, work: { type: 'string' },
  },
});
const checks = new Checks();
const report = (ok, what, why) => checks.report(ok, what, why);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the wsdest under test, on an external broker ----

const wsdest = new WsdestProcess({ bin: opts.bin, port: opts.port, broker: opts.broker, log: opts.log, env: opts.env + '\nLOG_LEVEL=debug' });

// ---- a TCP proxy in front of it, whose connections can be cut ----

const piped = new Set();
const proxy = net.createServer((down) => {
  const up = net.connect(Number(opts.port), '127.0.0.1');
  piped.add(down);
  piped.add(up);
  const end = () => { down.destroy(); up.destroy(); piped.delete(down); piped.delete(up); };
  down.on('error', end).on('close', end);
  up.on('error', end).on('close', end);
  down.pipe(up);
  up.pipe(down);
});
function cut() {
  const n = piped.size / 2;
  for (const s of piped) s.resetAndDestroy();
  piped.clear();
  return n;
}

// ---- a web server of another origin: the test page and the docs' example ----

const page = `<!doctype html><meta charset="utf-8"><title>client test</title>
<script type="module">
  const q = new URLSearchParams(location.search);
  const { connect } = await import(q.get('client'));
  window.state = { recs: [], states: [], notices: [], errors: [], bigints: 0, trace: [], point: '' };
  const stream = connect(q.get('ws'), { snapshot: true });
  window.stream = stream;
  let fresh = false; // the next record is the first of a connection
  stream.addEventListener('state', (e) => {
    window.state.states.push(e.detail.state);
    window.state.trace.push([performance.now() | 0, e.detail.state, e.detail.code, new URL(e.detail.url || 'ws://x').searchParams.get('from')].join(' '));
    fresh = true;
  });
  stream.addEventListener('notice', (e) => {
    if (e.detail.notice === 'snapshot_end' && !window.state.point) window.state.point = e.detail.cursor;
    else window.state.notices.push(e.text);
  });
  stream.addEventListener('error', (e) => window.state.errors.push(e.detail.message));
  stream.addEventListener('record', (e) => {
    if (fresh) window.state.trace.push('first ' + e.detail.partition + '/' + e.detail.offset + ' (' + e.detail.cursor + ')');
    fresh = false;
    window.state.recs.push([e.detail.partition, e.detail.offset, e.detail.key, window.state.point ? 'live' : 'snapshot']);
    const ts = e.detail.value.Timestamp; // exact: the digits of the text
    if (typeof ts === 'bigint' && new RegExp('"Timestamp":' + ts + '[,}]').test(e.text)) window.state.bigints++;
  });
</script>`;
const example = readFileSync(opts.example, 'utf8');
const web = http.createServer((req, res) => {
  const body = req.url.startsWith('/example.html') ? example : page;
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(body);
});

// ---- checks ----

// inOrder returns the problems of a list of [partition, offset, key]:
// every partition's offsets must go up by one (the demo writes one row per
// record), but for the rows of the record of key MULTI, which share one.
// point, the snapshot point (a cursor), is where every partition starts.
function inOrder(recs, point) {
  const last = new Map();
  const problems = [];
  const start = nextOffsets(point);
  if (!start) problems.push(`no snapshot point (${point})`);
  else start.forEach((next, p) => { if (next >= 0) last.set(p, next - 1); });
  for (const [p, o, k] of recs) {
    if (last.has(p) && o !== last.get(p) + 1 && !(k === MULTI && o === last.get(p))) {
      problems.push(`partition ${p}: offset ${o} after ${last.get(p)}`);
    }
    last.set(p, o);
  }
  const multi = recs.filter(([, , k]) => k === MULTI).length;
  if (multi !== ROWS) problems.push(`${multi} rows of the ${ROWS}-row record`);
  return { problems, partitions: last.size };
}

// A Quix record of ROWS rows (the legacy ParameterData envelope), key
// MULTI, produced with kcat: its rows share an offset and must all arrive.
const MULTI = 'multi-row', ROWS = 3;
function produceMultiRow() {
  const ts = Array.from({ length: ROWS }, (_, i) => `179616746432573427${i}`).join(',');
  const line = `${MULTI}:{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[1,2,3]},"Timestamps":[${ts}]}}\n`;
  return new Promise((resolve) => {
    const p = spawn('kcat', ['-P', '-b', opts.broker, '-t', 'input', '-K:'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('error', () => resolve(false));
    p.on('exit', (code) => resolve(code === 0));
    p.stdin.end(line);
  });
}

// nextOffsets reads each partition's next offset from a cursor (see
// cursor.go: version, name hash, topic id, then uvarints: since, the
// partition count, each next offset + 1); null if it is not one.
function nextOffsets(cursor) {
  if (typeof cursor !== 'string' || !cursor) return null;
  const b = Buffer.from(cursor, 'base64url');
  if (b[0] !== 1) return null;
  let i = 13;
  const uvarint = () => {
    let v = 0, m = 1, c;
    do { c = b[i++]; v += (c & 127) * m; m *= 128; } while (c & 128);
    return v;
  };
  uvarint();
  const n = uvarint();
  return Array.from({ length: n }, () => uvarint() - 1);
}

// snapshotProblems: the snapshot (the records before snapshot_end) holds
// every demo sensor once, and comes before the first live record.
function snapshotProblems(snap, all) {
  const problems = [];
  const keys = snap.map((r) => r[2]);
  if (new Set(keys).size !== keys.length) problems.push(`a key twice in the snapshot: ${keys.join()}`);
  for (let i = 1; i <= 4; i++) if (!keys.includes(`sensor-${i}`)) problems.push(`sensor-${i} not in the snapshot (${keys.join()})`);
  const firstLive = all.findIndex((r) => r[3] === 'live');
  if (firstLive >= 0 && firstLive < snap.length) problems.push('a live record before the end of the snapshot');
  return problems;
}

// SNAP_POINT is a cursor (cursor.go's form) at partition 0 offset 10 and
// partition 1 offset 5: version 1, name hash and topic id (zeros), since 0,
// 2 partitions, next offsets + 1 (11, 6), no partial record, a checksum
// the client does not check.
const SNAP_POINT = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 11, 6, 0, 0, 0]).toString('base64url');

const lives = (states) => states.filter((s) => s === 'live').length;

// scriptedChecks runs the client against a scripted server (ws's
// WebSocketServer) that sends what wsdest would send on a bad day: a record
// again after a reconnect, notices, a 19-digit Timestamp beside a nested
// one, and the closes the client must retry.
async function scriptedChecks(connect) {
  const urls = [];
  const env = (p, o, cursor, value = { v: o }) => JSON.stringify({
    topic: 't', partition: p, offset: o, timestamp: 1796167464325, key: `k${o}`, headers: {}, value, cursor,
  });
  const script = [
    (ws) => { ws.send(env(0, 5, 'c5')); ws.send(env(0, 6, 'c6')); ws.send(env(1, 2, 'c7')); ws.close(1008, 'too slow'); },
    (ws) => {
      ws.send(env(0, 6, 'c6')); // delivered before the reconnect: dropped
      ws.send(env(0, 7, 'c8', { meta: { Timestamp: 1 }, Timestamp: 'TS' }).replace('"TS"', '1796167464325734275'));
      ws.close(1001, 'going away');
    },
    (ws) => {
      ws.send(JSON.stringify({ notice: 'gap', partition: 1, from: 3, to: 9 }));
      ws.send(env(1, 9, 'c9'));
      ws.send(JSON.stringify({ notice: 'reset', reason: 'topic_recreated' }));
      ws.send(env(0, 0, 'c10')); // the new topic's offsets start again
      ws.close(1011, 'catch-up failed');
    },
    (ws) => { ws.send(env(0, 1, 'c11')); },
  ];
  let refusedHandshakes = 0;
  const server = new WebSocketServer({
    host: '127.0.0.1', port: 0,
    verifyClient: (info, cb) => {
      if (!info.req.url.startsWith('/bad')) return cb(true);
      refusedHandshakes++;
      return cb(false, 400, 'Bad Request');
    },
  });
  await new Promise((r) => server.once('listening', r));
  server.on('connection', (ws, req) => {
    urls.push(new URL(req.url, 'ws://x'));
    if (req.url.startsWith('/exp')) {
      // Every connection gets the next record, then its token expires.
      const n = urls.filter((u) => u.pathname === '/exp').length;
      ws.send(env(0, n, `e${n}`));
      ws.close(1008, 'token expired');
      return;
    }
    if (req.url.startsWith('/snap')) {
      const n = urls.filter((u) => u.pathname === '/snap').length;
      if (n === 1) {
        // The snapshot's records carry the point P (partition 0 next at 10,
        // partition 1 at 5), then live from P; a record below P after
        // snapshot_end (8, 9) is one the snapshot stands for: dropped.
        ws.send(env(0, 3, SNAP_POINT)); ws.send(env(1, 1, SNAP_POINT)); ws.send(env(0, 7, SNAP_POINT));
        ws.send(JSON.stringify({ notice: 'snapshot_end', keys: 3, cursor: SNAP_POINT }));
        ws.send(env(0, 8, 'c8')); ws.send(env(0, 10, 'c10')); ws.send(env(0, 9, 'c9'));
        ws.close(1001, 'going away');
      } else if (n === 2) {
        ws.send(env(0, 11, 'c11'));
      }
      return;
    }
    if (req.url.startsWith('/drop')) {
      // Drops during the snapshot: the next connection resumes from P.
      if (urls.filter((u) => u.pathname === '/drop').length === 1) { ws.send(env(0, 3, SNAP_POINT)); ws.close(1001, 'going away'); }
      return;
    }
    if (req.url.startsWith('/quiet')) { if (urls.filter((u) => u.pathname === '/quiet').length === 1) ws.close(1001, 'going away'); return; }
    const step = script[urls.filter((u) => u.pathname === '/ws').length - 1];
    if (step) step(ws);
  });
  const base = `ws://127.0.0.1:${server.address().port}`;
  const got = { recs: [], notices: [], states: [], ts: [] };
  const stream = connect(`${base}/ws`, { WebSocket, keys: ['a'], last: 5, maxRate: 2.5, minDelay: 20, maxDelay: 40, where: 'value.n > 1', fields: ['x ', ' y.z, '] });
  stream.addEventListener('record', (e) => { got.recs.push([e.detail.partition, e.detail.offset]); got.ts.push(e.detail.value.Timestamp); });
  stream.addEventListener('notice', (e) => got.notices.push(e.detail.notice));
  stream.addEventListener('state', (e) => got.states.push(e.detail.state));
  for (let i = 0; i < 100 && got.recs.length < 7; i++) await sleep(50);
  const latest = [...stream.latest.keys()].join();
  stream.close();
  const want = [[0, 5], [0, 6], [1, 2], [0, 7], [1, 9], [0, 0], [0, 1]];
  report(JSON.stringify(got.recs) === JSON.stringify(want) && got.notices.join() === 'gap,reset',
    'client (scripted server): a record sent again after a reconnect is dropped; after a reset the new offsets are delivered',
    JSON.stringify(got, (_, x) => (typeof x === 'bigint' ? String(x) : x)));
  const ws = urls.filter((u) => u.pathname === '/ws');
  const q = (i, k) => ws[i] && ws[i].searchParams.get(k);
  report(ws.length === 4 && q(0, 'last') === '5' && q(0, 'key') === 'a' && q(0, 'envelope') === 'true' && !ws[0].searchParams.has('from') &&
    q(1, 'from') === 'c7' && q(2, 'from') === 'c8' && q(3, 'from') === 'c10' && ws.slice(1).every((u) => !u.searchParams.has('last') && u.searchParams.get('key') === 'a') &&
    ws.every((u) => u.searchParams.get('max_rate') === '2.5'),
  'client (scripted server): after 1008 "too slow", 1001 and 1011 it reconnects with from= the last cursor, without last=, with max_rate= the maxRate option',
    ws.map((u) => u.search).join(' '));
  report(ws.length === 4 && ws.every((u) => u.searchParams.get('where') === 'value.n > 1' && u.searchParams.get('fields') === 'x,y.z'),
    'client (scripted server): the where and fields options go with every connection, reconnects included, the paths trimmed', ws.map((u) => u.search).join(' '));
  report(got.ts[3] === 1796167464325734275n, 'client (scripted server): a 19-digit Timestamp beside a nested one is exact', String(got.ts[3]));
  report(latest === 'k0,k1', 'client (scripted server): a reset clears stream.latest', latest);

  // A snapshot: its records (older than the point) are all delivered,
  // snapshot_end sets the floor at the point, a reconnect resumes from the
  // cursor with no second snapshot; a drop during the snapshot resumes
  // from the point.
  const snap = { recs: [], notices: [] };
  const snapping = connect(`${base}/snap`, { WebSocket, snapshot: true, minDelay: 20, maxDelay: 40 });
  snapping.addEventListener('record', (e) => snap.recs.push([e.detail.partition, e.detail.offset]));
  snapping.addEventListener('notice', (e) => snap.notices.push(e.detail.notice));
  for (let i = 0; i < 100 && snap.recs.length < 5; i++) await sleep(50);
  snapping.close();
  const dropping = connect(`${base}/drop`, { WebSocket, snapshot: true, minDelay: 20, maxDelay: 40 });
  for (let i = 0; i < 100 && urls.filter((u) => u.pathname === '/drop').length < 2; i++) await sleep(50);
  dropping.close();
  const sn = urls.filter((u) => u.pathname === '/snap'), dr = urls.filter((u) => u.pathname === '/drop');
  report(JSON.stringify(snap.recs) === '[[0,3],[1,1],[0,7],[0,10],[0,11]]' && snap.notices.join() === 'snapshot_end' &&
    sn[0].searchParams.get('snapshot') === 'true' && !sn[0].searchParams.has('from') &&
    sn[1] && sn[1].searchParams.get('from') === 'c10' && !sn[1].searchParams.has('snapshot') &&
    dr[1] && dr[1].searchParams.get('from') === SNAP_POINT && !dr[1].searchParams.has('snapshot'),
  'client (scripted server): snapshot: its old records all delivered, then live from the point (older ones dropped); reconnects resume from the cursor, never a second snapshot',
  `${JSON.stringify(snap)} ${sn.map((u) => u.search).join(' ')} ${dr.map((u) => u.search).join(' ')}`);

  // A stream that drops before its first record goes on from when it opened.
  const t0 = Date.now();
  const quiet = connect(`${base}/quiet`, { WebSocket, minDelay: 20, maxDelay: 40 });
  for (let i = 0; i < 100 && urls.filter((u) => u.pathname === '/quiet').length < 2; i++) await sleep(50);
  quiet.close();
  const qs = urls.filter((u) => u.pathname === '/quiet');
  const from = qs[1] ? Date.parse(qs[1].searchParams.get('from')) : NaN;
  report(qs.length >= 2 && !qs[0].searchParams.has('from') && from >= t0 - 1000 && from <= Date.now(),
    'client (scripted server): a stream that drops before its first record resumes from the time it opened, not from latest',
    qs.map((u) => u.search).join(' '));
  // An expired token: with a function, the stream goes on with the next
  // token from the cursor; with a string, it ends.
  let minted = 0;
  const renew = { recs: [], errors: 0 };
  const renewing = connect(`${base}/exp`, { WebSocket, minDelay: 20, maxDelay: 40, token: async () => `t${++minted}` });
  renewing.addEventListener('record', (e) => renew.recs.push(e.detail.offset));
  renewing.addEventListener('error', () => renew.errors++);
  for (let i = 0; i < 100 && renew.recs.length < 3; i++) await sleep(50);
  renewing.close();
  const exp = urls.filter((u) => u.pathname === '/exp');
  report(renew.recs.slice(0, 3).join() === '1,2,3' && renew.errors === 0 &&
    exp.slice(0, 3).map((u) => u.searchParams.get('token')).join() === 't1,t2,t3' &&
    exp[1].searchParams.get('from') === 'e1' && exp[2].searchParams.get('from') === 'e2',
  'client (scripted server): with a token function, 1008 "token expired" reconnects with a fresh token from the cursor',
  exp.map((u) => u.search).join(' '));
  const fixed = { errors: [], states: [] };
  const seen = exp.length;
  const expiring = connect(`${base}/exp`, { WebSocket, minDelay: 20, maxDelay: 40, token: 'fixed' });
  expiring.addEventListener('error', (e) => fixed.errors.push(`${e.detail.code} ${e.detail.reason}`));
  for (let i = 0; i < 100 && fixed.errors.length === 0; i++) await sleep(50);
  const connections = urls.filter((u) => u.pathname === '/exp').length - seen;
  report(fixed.errors.join() === '1008 token expired' && expiring.state === 'closed' && connections === 1,
    'client (scripted server): with a fixed token, 1008 "token expired" ends the stream',
    `${JSON.stringify(fixed)}, ${connections} connections`);

  // A handshake answered with an HTTP error (wsdest's 400 for a bad from=)
  // is retried, at the backoff, without an error: a browser cannot tell it
  // from a network failure.
  const bad = { states: [], errors: 0 };
  const refused = connect(`${base}/bad`, { WebSocket, minDelay: 20, maxDelay: 40 });
  refused.addEventListener('state', (e) => bad.states.push(e.detail.state));
  refused.addEventListener('error', () => bad.errors++);
  for (let i = 0; i < 100 && refusedHandshakes < 3; i++) await sleep(50);
  const st = refused.state;
  refused.close();
  report(refusedHandshakes >= 3 && st === 'reconnecting' && bad.errors === 0 && !bad.states.includes('live'),
    'client (scripted server): a handshake refused with 400 is retried at the backoff, with no error event',
    `${refusedHandshakes} handshakes, state ${st}, ${bad.errors} errors`);
  server.close();

  // close() while the handshake is under way: with the ws package that
  // must not end the process (ws emits "error" for it).
  const silent = net.createServer(() => {}); // accepts, never answers
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const hanging = connect(`ws://127.0.0.1:${silent.address().port}/ws`, { WebSocket });
  await sleep(300);
  const before = hanging.state;
  hanging.close();
  await sleep(300);
  report(before === 'connecting' && hanging.state === 'closed', 'client (Node, ws): close() during the handshake ends the stream quietly',
    `${before} -> ${hanging.state}`);
  silent.close();
}

let browser;
const node = { recs: [], states: [], notices: [], errors: [], bigints: 0, trace: [], point: '' };
let nodeStream = null;
try {
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  const proxyPort = proxy.address().port, webPort = web.address().port;
  wsdest.start();
  report(await wsdest.ready(TIMEOUT), `client: wsdest ready on :${opts.port} (broker ${opts.broker}), proxy :${proxyPort}`);

  // Node: the client as served, saved and imported, with ws as WebSocket.
  const res = await fetch(`http://127.0.0.1:${opts.port}/_wsdest/client.js`);
  const file = join(opts.work, 'client.mjs');
  writeFileSync(file, await res.text());
  const { connect } = await import(pathToFileURL(file).href);
  await scriptedChecks(connect);
  let threw = '';
  try { connect(`ws://127.0.0.1:${proxyPort}/ws`); } catch (e) { threw = String(e); }
  report(globalThis.WebSocket !== undefined || threw.includes('WebSocket'),
    `client (node ${process.version}): without a WebSocket, connect says to pass one`, threw);
  nodeStream = connect(`ws://127.0.0.1:${proxyPort}/ws`, { WebSocket, snapshot: true });
  let fresh = false;
  nodeStream.addEventListener('state', (e) => {
    node.states.push(e.detail.state);
    node.trace.push([Date.now() % 100000, e.detail.state, e.detail.code, new URL(e.detail.url || 'ws://x').searchParams.get('from')].join(' '));
    fresh = true;
  });
  nodeStream.addEventListener('notice', (e) => {
    if (e.detail.notice === 'snapshot_end' && !node.point) node.point = e.detail.cursor;
    else node.notices.push(e.text);
  });
  nodeStream.addEventListener('error', (e) => node.errors.push(e.detail.message));
  nodeStream.addEventListener('record', (e) => {
    if (fresh) node.trace.push(`first ${e.detail.partition}/${e.detail.offset} (${e.detail.cursor})`);
    fresh = false;
    node.recs.push([e.detail.partition, e.detail.offset, e.detail.key, node.point ? 'live' : 'snapshot']);
    const ts = e.detail.value.Timestamp;
    if (typeof ts === 'bigint' && new RegExp(`"Timestamp":${ts}[,}]`).test(e.text)) node.bigints++;
  });

  browser = await launchChromium();
  const context = await browser.newContext();
  const tab = await context.newPage();
  const pageErrors = [];
  tab.on('pageerror', (e) => pageErrors.push(`pageerror: ${e}`));
  tab.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
  const q = new URLSearchParams({ client: `http://127.0.0.1:${proxyPort}/_wsdest/client.js`, ws: `ws://127.0.0.1:${proxyPort}/ws` });
  await tab.goto(`http://127.0.0.1:${webPort}/?${q}`, { timeout: TIMEOUT });

  const pageCount = () => tab.evaluate(() => (window.state ? window.state.recs.length : 0));
  const pageState = () => tab.evaluate(() => window.state);
  // flowing waits until both clients are live again and each has n more
  // records than it had.
  async function flowing(what) {
    const p0 = await pageCount(), n0 = node.recs.length;
    const deadline = Date.now() + TIMEOUT;
    while (Date.now() < deadline) {
      const p = await tab.evaluate(() => ({ n: window.state ? window.state.recs.length : 0, s: window.stream ? window.stream.state : '' }));
      if (p.n >= p0 + 40 && p.s === 'live' && node.recs.length >= n0 + 40 && nodeStream.state === 'live') {
        report(true, `client: ${what}: records flow again in Chromium and Node`);
        return;
      }
      await sleep(100);
    }
    report(false, `client: ${what}: records flow again in Chromium and Node`,
      `page ${p0} -> ${await pageCount()}, node ${n0} -> ${node.recs.length} (${nodeStream.state})`);
  }

  await flowing('connected');
  report(await produceMultiRow(), `client: kcat produced a ${ROWS}-row Quix record`);

  const n = cut();
  report(n >= 2, 'client: the proxy cut every connection (a network failure, close 1006)', `${n} connections`);
  await flowing('after the cut');

  await wsdest.stop('SIGTERM');
  await sleep(1500); // records keep coming meanwhile; the clients back off
  wsdest.start();
  report(await wsdest.ready(TIMEOUT), 'client: wsdest stopped (SIGTERM, 1001 going away) and started again 1.5 s later');
  await flowing('after the restart');

  await wsdest.stop('SIGKILL');
  wsdest.start();
  report(await wsdest.ready(TIMEOUT), 'client: wsdest killed (SIGKILL) and started again at once');
  await flowing('after the kill');

  const s = await pageState();
  await tab.evaluate(() => window.stream.close());
  nodeStream.close();
  for (const [who, st] of [['Chromium', s], [`Node ${process.version} with ws`, node]]) {
    const snap = st.recs.filter((r) => r[3] === 'snapshot');
    const liveRecs = st.recs.filter((r) => r[3] === 'live');
    const { problems, partitions } = inOrder(liveRecs, st.point);
    problems.push(...snapshotProblems(snap, st.recs));
    const single = liveRecs.filter(([, , k]) => k !== MULTI); // the rows are counted by inOrder
    const seen = new Set(single.map(([p, o]) => `${p}/${o}`));
    if (seen.size !== single.length) problems.push(`${single.length - seen.size} records twice`);
    if (st.notices.length) problems.push(`notices ${st.notices.join(' ')}`);
    if (st.errors.length) problems.push(`errors ${st.errors.join(' ')}`);
    report(problems.length === 0 && partitions > 1 && lives(st.states) >= 4,
      `client (${who}): a snapshot of ${snap.length} keys first, then ${liveRecs.length} records over ${partitions} partitions from the snapshot point (and every row of a ${ROWS}-row record) across a cut, a restart and a kill: none lost, none twice, ${lives(st.states)} connections`,
      `${problems.slice(0, 5).join('; ')}; trace: ${st.trace.join(', ')}`);
    report(st.bigints === st.recs.length && st.bigints > 0, `client (${who}): every Quix Timestamp is a BigInt, exact to the nanosecond`, `${st.bigints} of ${st.recs.length}`);
  }
  report(pageErrors.every((e) => e.includes('WebSocket connection to')),
    'client: no page errors beyond the browser\'s failed-connection notices', JSON.stringify(pageErrors.slice(0, 3)));

  // A refusal ends the stream: state closed, one error, no further attempt.
  const refused = { states: [], errors: [] };
  const bad = connect(`ws://127.0.0.1:${opts['auth-port']}/ws`, { WebSocket, token: 'wrong', minDelay: 50 });
  bad.addEventListener('state', (e) => refused.states.push(e.detail.state));
  bad.addEventListener('error', (e) => refused.errors.push(`${e.detail.code} ${e.detail.reason}`));
  await sleep(2000); // time for many attempts at a 50 ms backoff, if it retried
  report(refused.errors.join() === '1008 credential not accepted' && refused.states.join() === 'connecting,live,closed' && bad.state === 'closed',
    'client (Node): a wrong token ends the stream (close 1008 "credential not accepted"): state closed, an error, no retry', JSON.stringify(refused));

  // The docs' example page, as written, from another origin.
  const ex = await context.newPage();
  const exErrors = [];
  ex.on('pageerror', (e) => exErrors.push(`pageerror: ${e}`));
  ex.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') exErrors.push(`console: ${m.text()}`); });
  await ex.goto(`http://127.0.0.1:${webPort}/example.html`, { timeout: TIMEOUT });
  let ok = true;
  try {
    await ex.waitForFunction(() => document.getElementById('state').textContent === 'live' &&
      document.querySelectorAll('#rows tr').length >= 4 && Number(document.getElementById('count').textContent) >= 20,
    null, { timeout: TIMEOUT, polling: 100 });
  } catch { ok = false; }
  const shown = await ex.evaluate(() => ({
    state: document.getElementById('state').textContent, count: document.getElementById('count').textContent,
    first: document.querySelector('#rows tr')?.textContent ?? '',
    snapshot: document.getElementById('snapshot').textContent,
  }));
  report(ok && /"Timestamp":"\d{19}"/.test(shown.first) && shown.snapshot === '4' && exErrors.length === 0,
    'client: the example page of docs/protocol.md works as written (a snapshot of the four sensors, then live, a row per sensor, exact Timestamps)',
    `${JSON.stringify(shown)} ${JSON.stringify(exErrors.slice(0, 3))}`);
} catch (e) {
  report(false, 'client: run the checks', String(e && e.stack ? e.stack : e));
} finally {
  if (nodeStream) nodeStream.close();
  if (browser) await browser.close();
  await wsdest.stop('SIGTERM');
  cut();
  proxy.close();
  web.close();
}
process.exit(checks.failed ? 1 : 0);

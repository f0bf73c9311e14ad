// Browser checks of wsdest's own viewer page: Debian's Chromium, driven by
// playwright-core, opens the page wsdest serves and is watched for console
// errors and for any request that would leave that server.
//
//   node viewer.mjs --open-port P --auth-port P2 --key K --jwt T --basic-port P4 --basic U:PW --shots DIR
//   node viewer.mjs --restart-port P3 --restarted FILE --shots DIR
//   node viewer.mjs --down-port P5 --shots DIR
//
// P serves demo data without auth; P2 with AUTH_API_KEYS=K and a JWT
// secret that signed T, a token granting sensor-2 alone; P4 with
// WS_USERNAME=U and WS_PASSWORD=PW. With
// --restart-port the script loads the viewer and prints "stop-now"; the
// calling shell then stops wsdest, starts it again on the same port and
// creates FILE. P5 serves a wsdest whose Kafka broker does not answer.
// Screenshots go to DIR. Every check prints "PASS <what>" or
// "FAIL <what>: <why>"; the exit status is 1 if any failed.

import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Checks, launchChromium } from './lib.mjs';

const TIMEOUT = 15_000; // ms any single wait may take

const { values: opts } = parseArgs({
  options: {
    'open-port': { type: 'string' },
    'auth-port': { type: 'string' },
    'restart-port': { type: 'string' },
    'down-port': { type: 'string' },
    'quiet-port': { type: 'string' },
    'nosnap-port': { type: 'string' },
    restarted: { type: 'string' },
    key: { type: 'string' },
    jwt: { type: 'string' },
    'basic-port': { type: 'string' },
    basic: { type: 'string' },
    shots: { type: 'string' },
  },
});
if (!opts.shots || !((opts['restart-port'] && opts.restarted) || opts['down-port'] || opts['quiet-port'] || opts['nosnap-port'] ||
  (opts['open-port'] && opts['auth-port'] && opts.key && opts.jwt && opts['basic-port'] && opts.basic))) {
  console.error('viewer.mjs: want --shots and either --open-port, --auth-port, --key, --jwt, --basic-port, --basic or --restart-port, --restarted or --down-port or --quiet-port or --nosnap-port');
  process.exit(2);
}

const checks = new Checks();
const report = (ok, what, why) => checks.report(ok, what, why);

const browser = await launchChromium();

// open loads url in a fresh context and watches it: errors (uncaught
// exceptions and console errors) and foreign (requests to any other origin,
// which are aborted) fill in as the page runs.
async function open(url, origin) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const tab = await context.newPage();
  const w = { context, tab, errors: [], foreign: [], requests: 0 };
  tab.on('pageerror', (e) => w.errors.push(`pageerror: ${e}`));
  tab.on('console', (m) => { if (m.type() === 'error') w.errors.push(`console: ${m.text()}`); });
  await context.route('**/*', (route) => {
    const u = route.request().url();
    w.requests++;
    if (new URL(u).origin === origin) return route.continue();
    w.foreign.push(u);
    return route.abort();
  });
  // WebSocket connections are not routed; check them by their URL.
  tab.on('websocket', (ws) => {
    w.requests++;
    if (new URL(ws.url()).host !== new URL(origin).host) w.foreign.push(ws.url());
  });
  await tab.goto(url, { timeout: TIMEOUT });
  return w;
}

async function until(tab, fn, arg) {
  try {
    await tab.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 100 });
    return true;
  } catch {
    return false;
  }
}

const viewerState = (tab) => tab.evaluate(() => ({
  state: window.wsdestViewer.state, total: window.wsdestViewer.total, keys: window.wsdestViewer.keys,
  charts: window.wsdestViewer.charts, alert: document.getElementById('alert').hidden ? '' : document.getElementById('alert').textContent,
}));

// inked counts the pixels of the chart canvas drawn in the first series'
// colour (#2456c7): axes and grid are other colours, so these are the line.
const inked = (tab) => tab.evaluate(() => {
  const c = document.querySelector('#charts canvas');
  if (!c) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 200 && Math.abs(d[i] - 0x24) < 40 && Math.abs(d[i + 1] - 0x56) < 40 && Math.abs(d[i + 2] - 0xc7) < 40) n++;
  }
  return n;
});

const tableValue = (tab, key, field) => tab.evaluate(([k, f]) => {
  for (const row of document.querySelectorAll('#latest tbody tr')) {
    if (row.cells[0].textContent !== k) continue;
    const el = row.querySelector(`.field[data-field="${f}"] .v`);
    return { count: Number(row.cells[1].textContent), value: el ? el.textContent : null, time: row.cells[2].textContent };
  }
  return null;
}, [key, field]);

async function openChecks() {
  const origin = `http://127.0.0.1:${opts['open-port']}`;
  const w = await open(`${origin}/`, origin);
  const { tab } = w;
  const sensors = ['sensor-1', 'sensor-2', 'sensor-3', 'sensor-4'];
  const ok = await until(tab, (want) => want.every((k) => window.wsdestViewer.keys.includes(k)), sensors);
  let s = await viewerState(tab);
  report(ok && s.state === 'connected', 'viewer: / in a browser shows the four demo keys, connected', JSON.stringify(s));

  const fieldsOK = await until(tab, () => document.querySelectorAll('#latest .field[data-field="temperature"]').length >= 4 &&
    document.querySelectorAll('#latest .field[data-field="humidity"]').length >= 4);
  report(fieldsOK, 'viewer: the table shows temperature and humidity for every key');

  const time = (await tableValue(tab, 'sensor-1', 'temperature'))?.time ?? '';
  report(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(time),
    'viewer: the time column is the Quix Timestamp to the nanosecond', `got ${JSON.stringify(time)}`);

  const chartsOK = await until(tab, () => window.wsdestViewer.charts.includes('temperature') && window.wsdestViewer.charts.includes('humidity'));
  let px = 0;
  if (chartsOK) {
    await until(tab, () => {
      const c = document.querySelector('#charts canvas');
      return c !== null;
    });
    for (let i = 0; i < 50 && (px = await inked(tab)) < 50; i++) await tab.waitForTimeout(100);
  }
  report(chartsOK && px >= 50, 'viewer: temperature and humidity are charted, the line inked on the canvas', `charts ok=${chartsOK} inked pixels=${px}`);

  const a = await tableValue(tab, 'sensor-1', 'temperature');
  const live = await until(tab, (n) => {
    for (const row of document.querySelectorAll('#latest tbody tr')) {
      if (row.cells[0].textContent === 'sensor-1') return Number(row.cells[1].textContent) >= n + 10;
    }
    return false;
  }, a ? a.count : 0);
  const b = await tableValue(tab, 'sensor-1', 'temperature');
  report(live && a && b && b.count > a.count && b.time !== a.time, 'viewer: values update live (count and time move on)',
    `before ${JSON.stringify(a)} after ${JSON.stringify(b)}`);

  const logOK = await tab.evaluate(() => document.getElementById('log').textContent.includes('"key":"sensor-'));
  report(logOK, 'viewer: the message log shows the raw envelopes');

  // Pause holds the log still while records keep counting.
  await tab.check('#f-pause');
  await tab.waitForTimeout(300);
  const frozen = await tab.evaluate(() => document.getElementById('log').textContent);
  const t0 = (await viewerState(tab)).total;
  await until(tab, (n) => window.wsdestViewer.total > n + 20, t0);
  const still = await tab.evaluate(() => document.getElementById('log').textContent);
  report(frozen === still && (await viewerState(tab)).total > t0 + 20, 'viewer: pause freezes the log while records keep coming');
  await tab.uncheck('#f-pause');

  await tab.fill('#f-filter', 'sensor-3');
  await tab.waitForTimeout(500);
  const filtered = await tab.evaluate(() => [...document.querySelectorAll('#log span')].map((e) => e.textContent));
  report(filtered.length > 0 && filtered.every((l) => l.includes('sensor-3')), 'viewer: the log filter keeps only matching lines',
    `${filtered.length} lines, first ${JSON.stringify(filtered[0])}`);
  // Copy takes what the filter shows, whole lines, onto the clipboard.
  await w.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  await tab.click('#b-copy');
  await until(tab, () => document.getElementById('b-copy').textContent !== 'copy');
  const copied = await tab.evaluate(() => navigator.clipboard.readText());
  const lines = copied.split('\n');
  report(lines.length > 0 && lines.every((l) => l.includes('"key":"sensor-3"') && JSON.parse(l).key === 'sensor-3'),
    'viewer: copy puts the filtered log lines on the clipboard, each a whole JSON message', `${lines.length} lines, first ${JSON.stringify(lines[0])}`);
  await tab.fill('#f-filter', '');

  // Snippets name the current subscription's URL.
  await tab.click('button[data-snippet="python"]');
  const py = await tab.textContent('#snippet');
  report(py.includes('pip install websockets') && py.includes(`ws://127.0.0.1:${opts['open-port']}/ws?envelope=true`),
    'viewer: the Python snippet has the pip route and the subscription URL', py.split('\n').slice(0, 4).join(' | '));

  await tab.waitForTimeout(1500); // a full rate interval
  s = await viewerState(tab);
  const rate = await tab.textContent('#rate');
  report(/^[1-9][\d,]* records\/s$/.test(rate), 'viewer: the record rate is shown', rate);
  await tab.screenshot({ path: `${opts.shots}/viewer.png` });

  // The subscription builder: one key, from the form.
  await tab.fill('#f-keys', 'sensor-2');
  await tab.click('#sub-form button[type="submit"]');
  const one = await until(tab, () => window.wsdestViewer.keys.length === 1 && window.wsdestViewer.total > 5);
  await tab.waitForTimeout(500);
  s = await viewerState(tab);
  const url = new URL(tab.url());
  report(one && s.keys.length === 1 && s.keys[0] === 'sensor-2' && url.searchParams.get('key') === 'sensor-2',
    'viewer: subscribing to sensor-2 in the form shows only sensor-2 and puts it in the page URL', `${JSON.stringify(s)} url=${tab.url()}`);

  // Start positions pass through to the WebSocket URL.
  await tab.selectOption('#f-start', 'last');
  await tab.fill('#f-last', '20');
  await tab.click('#sub-form button[type="submit"]');
  await tab.waitForTimeout(300);
  const wsurl = await tab.textContent('#ws-url');
  report(wsurl.includes('key=sensor-2') && wsurl.includes('last=20'), 'viewer: last=N passes through to the WebSocket URL', wsurl);

  // A view: the server's filter (where) and projection (fields), applied
  // by reconnecting with them.
  await tab.selectOption('#f-start', '');
  await tab.fill('#f-keys', '');
  await tab.fill('#f-where', 'key == "sensor-2" || key == "sensor-3"');
  await tab.fill('#f-fields', 'humidity, Tags.location');
  await tab.click('#sub-form button[type="submit"]');
  const viewed = await until(tab, () => window.wsdestViewer.keys.length === 2 && window.wsdestViewer.total > 10);
  await tab.waitForTimeout(500);
  s = await viewerState(tab);
  const vurl = new URL(tab.url());
  const vws = await tab.textContent('#ws-url');
  // Records only: the snapshot_end notice is in the log too.
  const vlog = (await tab.evaluate(() => [...document.querySelectorAll('#log span')].map((e) => e.textContent.trim())))
    .filter((l) => !JSON.parse(l).notice);
  const projected = vlog.length > 0 && vlog.every((l) => {
    const m = JSON.parse(l);
    return (m.key === 'sensor-2' || m.key === 'sensor-3') && JSON.stringify(Object.keys(m.value)) === '["humidity","Tags"]' &&
      JSON.stringify(Object.keys(m.value.Tags)) === '["location"]' && typeof m.cursor === 'string';
  });
  const noTemp = (await tableValue(tab, 'sensor-2', 'temperature'))?.value ?? null;
  const hum = (await tableValue(tab, 'sensor-2', 'humidity'))?.value ?? null;
  report(viewed && s.keys.join() === 'sensor-2,sensor-3' && projected && noTemp === null && hum !== null &&
    vurl.searchParams.get('where') === 'key == "sensor-2" || key == "sensor-3"' && vurl.searchParams.get('fields') === 'humidity,Tags.location' &&
    vws.includes('where=') && vws.includes('fields=humidity%2CTags.location'),
  'viewer: a where filter and a field list reconnect with them: only the keys and members asked for arrive',
  `${JSON.stringify(s)} url=${tab.url()} ws=${vws} log=${JSON.stringify(vlog.slice(0, 2))} temperature=${noTemp} humidity=${hum}`);
  await tab.click('button[data-snippet="js"]');
  const js = await tab.textContent('#snippet');
  report(js.includes('where: "key == \\"sensor-2\\" || key == \\"sensor-3\\""') && js.includes('fields: ["humidity","Tags.location"]'),
    'viewer: the JavaScript snippet passes the view as options', js.split('\n').slice(4, 5).join(''));
  await tab.fill('#f-where', '');
  await tab.fill('#f-fields', '');
  // The rate box: max_rate=1 on every key. The demo sends each key ten
  // times a second; the page then gets about one a second per key.
  await tab.fill('#f-maxrate', '5000');
  await tab.click('#sub-form button[type="submit"]');
  s = await viewerState(tab);
  report(s.alert.includes('Max rate'), 'viewer: a rate out of range is refused in the form', JSON.stringify(s));
  await tab.selectOption('#f-start', '');
  await tab.fill('#f-keys', '');
  await tab.fill('#f-maxrate', '1');
  await tab.click('#sub-form button[type="submit"]');
  const four = await until(tab, () => window.wsdestViewer.keys.length === 4 && window.wsdestViewer.total >= 4);
  const before = (await viewerState(tab)).total;
  await tab.waitForTimeout(3000);
  const after = (await viewerState(tab)).total;
  const rated = await tab.textContent('#ws-url');
  await tab.click('.tab[data-snippet="js"]');
  const code = await tab.textContent('#snippet');
  report(four && after - before <= 4 * 3 + 4 && after > before && new URL(tab.url()).searchParams.get('max_rate') === '1' &&
    rated.includes('max_rate=1') && code.includes('maxRate: 1'),
  'viewer: the rate box asks for max_rate=1: about one record per key a second, in the page URL and the snippet',
  `${after - before} records in 3 s over 4 keys; ${rated}; url=${tab.url()}`);

  report(w.errors.length === 0, 'viewer: no console errors or uncaught exceptions', JSON.stringify(w.errors.slice(0, 3)));
  report(w.foreign.length === 0 && w.requests > 0, `viewer: every request stays on ${origin}`,
    `${w.foreign.length} foreign: ${JSON.stringify(w.foreign.slice(0, 3))}`);
  await w.context.close();

  // A filter the server refuses: the page says why (the position), and
  // keeps its subscription.
  const w4 = await open(`${origin}/?key=sensor-1`, origin);
  await until(w4.tab, () => window.wsdestViewer.total >= 3);
  const probes = [];
  w4.tab.on('request', (r) => { const u = new URL(r.url()); if (u.pathname === '/sse') probes.push(u); });
  await w4.tab.selectOption('#f-start', 'last');
  await w4.tab.fill('#f-last', '20');
  await w4.tab.fill('#f-where', 'value.temperature >');
  await w4.tab.click('#sub-form button[type="submit"]');
  const said = await until(w4.tab, () => !document.getElementById('alert').hidden);
  const st4 = await viewerState(w4.tab);
  const t4 = st4.total;
  const still4 = await until(w4.tab, (n) => window.wsdestViewer.total > n + 3, t4);
  report(said && /refused this view: .*where: 1:20/.test(st4.alert) && new URL(w4.tab.url()).searchParams.get('where') === null && still4,
    'viewer: a where filter that does not compile is refused with its position, and the stream goes on', JSON.stringify(st4));
  report(probes.length > 0 && probes.every((u) => !u.searchParams.has('last') && !u.searchParams.has('from') && u.searchParams.has('where')),
    'viewer: the check of a view asks for no start position (it starts no catch-up)', probes.map((u) => u.search).join(' '));
  await w4.context.close();

  // A key path opened in a browser: the public sample's /{key} and /ws/{key}.
  for (const path of ['/sensor-3', '/ws/sensor-3?envelope=yes']) {
    const w2 = await open(`${origin}${path}`, origin);
    const got = await until(w2.tab, () => window.wsdestViewer.total >= 5);
    const st = await viewerState(w2.tab);
    report(got && st.keys.length === 1 && st.keys[0] === 'sensor-3' && w2.errors.length === 0,
      `viewer: ${path} in a browser shows sensor-3 only`, JSON.stringify(st));
    await w2.context.close();
  }

  // Plain values carry no key: the page shows them under the path's key.
  const w3 = await open(`${origin}/sensor-4?envelope=false`, origin);
  const got = await until(w3.tab, () => window.wsdestViewer.total >= 5 && window.wsdestViewer.charts.length > 0);
  const st = await viewerState(w3.tab);
  report(got && st.keys.length === 1 && st.keys[0] === 'sensor-4' && w3.errors.length === 0,
    'viewer: envelope=false (plain values) still fills the table and the charts', JSON.stringify(st));
  // The page streams the envelope (it resumes by cursor) but logs what a
  // plain client gets: the value alone, its Timestamp's digits exact.
  // The snapshot_end notice is logged as a notice.
  const plainLog = await w3.tab.evaluate(() => [...document.querySelectorAll('#log span')].map((e) => e.textContent.trim())
    .filter((l) => !l.startsWith('{"notice":"snapshot_end"')));
  report(plainLog.length > 0 && plainLog.every((l) => /^\{"Timestamp":\d{19},/.test(l) && !l.includes('"cursor"')),
    'viewer: with envelope=false the log shows the plain values, Timestamps to the nanosecond', JSON.stringify(plainLog.slice(0, 2)));
  await w3.context.close();
}

// mockChecks loads the page from wsdest but answers its WebSocket with a
// scripted server (playwright's routeWebSocket): messages wsdest is about
// to send (envelopes with a "cursor", {"notice":...} messages), timestamps
// beyond a double's precision, and a burst the page must absorb.
async function mockChecks() {
  const origin = `http://127.0.0.1:${opts['open-port']}`;
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  const BURST = 20_000;
  await context.routeWebSocket(/\/ws\?/, (ws) => {
    const env = (key, value, offset, extra = {}) => JSON.stringify({
      topic: 'input', partition: 0, offset, timestamp: 1796167464325, key, headers: {}, value, ...extra,
    });
    // JSON.stringify cannot write a 19-digit integer exactly: splice it in.
    ws.send(env('m-1', { Timestamp: 'TS', v: 1.5 }, 1, { cursor: 'c0-1' }).replace('"TS"', '1796167464325734275'));
    ws.send(env('m-2', { v: 2 }, 10));
    const start = 1796167464000000000n;
    for (let i = 0; i < BURST; i++) {
      ws.send(env('m-3', { Timestamp: 'TS', v: i % 100 }, 11 + i).replace('"TS"', String(start + BigInt(i) * 1000000n)));
    }
    // Last, so that the log (the newest 2,000 messages) still holds it.
    ws.send(JSON.stringify({ notice: 'gap', partition: 0, from: 2, to: 9 }));
  });
  const tab = await context.newPage();
  tab.on('pageerror', (e) => errors.push(`pageerror: ${e}`));
  tab.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  await tab.goto(`${origin}/`, { timeout: TIMEOUT });
  const all = await until(tab, (n) => window.wsdestViewer.total >= n, BURST + 3);
  await tab.waitForTimeout(500);
  const s = await viewerState(tab);
  report(all, `viewer (scripted server): a burst of ${BURST} messages is absorbed`, JSON.stringify({ total: s.total }));

  const ns = 1796167464325734275n;
  const want = `${new Date(Number(ns / 1000000000n) * 1000).toISOString().slice(0, 19)}.${(ns % 1000000000n).toString().padStart(9, '0')}Z`;
  const m1 = await tableValue(tab, 'm-1', 'v');
  report(m1 && m1.time === want, 'viewer (scripted server): a 19-digit Quix Timestamp is shown to the nanosecond',
    `got ${JSON.stringify(m1)}, want ${want}`);
  const m2 = await tableValue(tab, 'm-2', 'v');
  report(m2 && m2.time === '2026-12-01T23:24:24.325Z (Kafka)', 'viewer (scripted server): without a Timestamp, the Kafka timestamp', JSON.stringify(m2));

  const notice = await tab.evaluate(() => ({
    n: window.wsdestViewer.notices,
    logged: [...document.querySelectorAll('#log span.notice')].some((e) => e.textContent.includes('"notice":"gap"')),
    keys: window.wsdestViewer.keys, charts: window.wsdestViewer.charts,
  }));
  report(notice.n === 1 && notice.keys.join() === 'm-1,m-2,m-3' && !notice.charts.includes('notice') && !notice.charts.includes('partition'),
    'viewer (scripted server): a notice is counted, never taken for a record or charted', JSON.stringify(notice));
  await tab.fill('#f-filter', '"notice"');
  await tab.waitForTimeout(300);
  const shownNotice = await tab.evaluate(() => document.querySelector('#log span.notice')?.textContent ?? '');
  report(shownNotice.includes('"notice":"gap"'), 'viewer (scripted server): the notice is in the log', shownNotice);
  await tab.fill('#f-filter', '');

  const m3 = await tableValue(tab, 'm-3', 'v');
  const bounded = await tab.evaluate(() => document.querySelectorAll('#log span').length);
  report(m3 && m3.count === BURST && bounded <= 400, 'viewer (scripted server): every record counted, the log DOM stays bounded',
    `m-3=${JSON.stringify(m3)} log lines=${bounded}`);
  report(errors.length === 0, 'viewer (scripted server): no console errors', JSON.stringify(errors.slice(0, 3)));
  await tab.screenshot({ path: `${opts.shots}/viewer-scripted.png` });
  await context.close();
}

// resumeChecks: a scripted server that sends one envelope with a cursor
// and then goes away; the page's next connection must resume from that
// cursor (from=...), and leave out last=N, which would repeat records.
async function resumeChecks() {
  const origin = `http://127.0.0.1:${opts['open-port']}`;
  const context = await browser.newContext();
  const urls = [];
  await context.routeWebSocket(/\/ws\?/, (ws) => {
    urls.push(ws.url());
    if (urls.length === 1) {
      ws.send(JSON.stringify({ topic: 'input', partition: 0, offset: 7, timestamp: 1796167464325, key: 'r-1', headers: {},
        value: { v: 1 }, cursor: 'c-7_x' }));
      setTimeout(() => ws.close({ code: 1001, reason: 'going away' }), 300);
    }
  });
  const tab = await context.newPage();
  await tab.goto(`${origin}/?last=50`, { timeout: TIMEOUT });
  const ok = await until(tab, () => window.wsdestViewer.state === 'connected' && window.wsdestViewer.total === 1);
  for (let i = 0; i < 100 && urls.length < 2; i++) await tab.waitForTimeout(100);
  const second = urls[1] ? new URL(urls[1]) : null;
  report(ok && new URL(urls[0]).searchParams.get('last') === '50' && second && second.searchParams.get('from') === 'c-7_x' &&
    !second.searchParams.has('last'), 'viewer (scripted server): a reconnect resumes from the last cursor, without last=N', JSON.stringify(urls));
  await context.close();
}

async function authChecks() {
  const origin = `http://127.0.0.1:${opts['auth-port']}`;
  let w = await open(`${origin}/?token=${encodeURIComponent(opts.key)}`, origin);
  let ok = await until(w.tab, () => window.wsdestViewer.total >= 5);
  let s = await viewerState(w.tab);
  report(ok && s.state === 'connected' && w.errors.length === 0, 'viewer: with auth on, ?token=<good key> in the page URL streams', JSON.stringify(s));
  await w.context.close();

  // A JWT in the page URL: the page streams what its grant covers, and
  // nothing else, though it asks for every key.
  w = await open(`${origin}/?token=${encodeURIComponent(opts.jwt)}`, origin);
  ok = await until(w.tab, () => window.wsdestViewer.total >= 5);
  s = await viewerState(w.tab);
  report(ok && s.state === 'connected' && w.errors.length === 0 && s.keys.length === 1 && s.keys[0] === 'sensor-2',
    'viewer: a JWT in ?token= streams the keys it grants, only those', JSON.stringify(s));
  await w.context.close();

  w = await open(`${origin}/?token=wrong`, origin);
  ok = await until(w.tab, () => window.wsdestViewer.state === 'unauthorized');
  s = await viewerState(w.tab);
  await w.tab.screenshot({ path: `${opts.shots}/viewer-wrong-token.png` });
  report(ok && s.alert.includes('refused this token') && s.total === 0, 'viewer: with auth on, a wrong token shows a clear message', JSON.stringify(s));

  // The Token field, on the same page: enter the right key, subscribe.
  await w.tab.fill('#f-token', opts.key);
  await w.tab.click('#sub-form button[type="submit"]');
  ok = await until(w.tab, () => window.wsdestViewer.total >= 5);
  s = await viewerState(w.tab);
  const stored = await w.tab.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length);
  report(ok && s.state === 'connected' && s.alert === '' && !w.tab.url().includes(opts.key) && stored === 0,
    'viewer: the right key in the Token field streams, and is kept out of the URL and of storage', `${JSON.stringify(s)} url=${w.tab.url()} stored=${stored}`);
  await w.context.close();

  w = await open(`${origin}/`, origin);
  ok = await until(w.tab, () => window.wsdestViewer.state === 'unauthorized');
  s = await viewerState(w.tab);
  report(ok && s.alert.includes('requires an API key'), 'viewer: with auth on and no token, the page says a key is needed', JSON.stringify(s));
  // Unauthorized close frames are expected; a console error is not.
  report(w.errors.length === 0, 'viewer: no console errors on the refused pages', JSON.stringify(w.errors.slice(0, 3)));
  await w.context.close();
}

// basicChecks: wsdest with only WS_USERNAME/WS_PASSWORD. The page asks for
// them (401 with WWW-Authenticate), and the browser then sends them on the
// page's WebSocket as well.
async function basicChecks() {
  const origin = `http://127.0.0.1:${opts['basic-port']}`;
  const [username, password] = opts.basic.split(':');
  let context = await browser.newContext({ httpCredentials: { username, password } });
  let tab = await context.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  await tab.goto(`${origin}/sensor-1`, { timeout: TIMEOUT });
  let ok = await until(tab, () => window.wsdestViewer.total >= 5);
  let s = await viewerState(tab);
  report(ok && s.state === 'connected' && s.keys.join() === 'sensor-1' && errors.length === 0,
    'viewer: with HTTP Basic only, the browser asked for the password streams (its WebSocket carries it too)', JSON.stringify(s));
  await context.close();

  // A wrong password: playwright answers the challenge once and then
  // gives up, as a user cancelling the prompt, and the 401 body shows.
  context = await browser.newContext({ httpCredentials: { username, password: 'wrong' } });
  tab = await context.newPage();
  await tab.goto(`${origin}/`, { timeout: TIMEOUT });
  ok = await until(tab, () => window.wsdestViewer.state === 'unauthorized');
  s = await viewerState(tab);
  report(ok && s.alert.includes('HTTP Basic'), 'viewer: with HTTP Basic only and a wrong password, the page says what it needs', JSON.stringify(s));
  await context.close();
}

async function restartChecks() {
  const origin = `http://127.0.0.1:${opts['restart-port']}`;
  const w = await open(`${origin}/`, origin);
  let ok = await until(w.tab, () => window.wsdestViewer.total >= 5);
  report(ok, 'viewer (restart): streaming before the restart');
  console.log('stop-now');
  ok = await until(w.tab, () => window.wsdestViewer.state.startsWith('connection lost') || window.wsdestViewer.state.startsWith('reconnecting') ||
    window.wsdestViewer.state.startsWith('cannot connect'));
  const down = await viewerState(w.tab);
  await w.tab.screenshot({ path: `${opts.shots}/viewer-reconnecting.png` });
  report(ok, 'viewer (restart): the page says the connection is lost and it is reconnecting', JSON.stringify(down));
  for (let i = 0; i < 600 && !existsSync(opts.restarted); i++) await new Promise((r) => setTimeout(r, 100));
  report(existsSync(opts.restarted), 'viewer (restart): the shell restarted wsdest');
  ok = await until(w.tab, (n) => window.wsdestViewer.state === 'connected' && window.wsdestViewer.total >= n + 5, down.total);
  const up = await viewerState(w.tab);
  report(ok, 'viewer (restart): after wsdest restarts the page reconnects by itself and streams again', `${JSON.stringify(down)} -> ${JSON.stringify(up)}`);
  report(w.errors.every((e) => e.includes('WebSocket connection to')), 'viewer (restart): no errors beyond the browser\'s failed-connection notices',
    JSON.stringify(w.errors.slice(0, 3)));
  await w.context.close();
}

// downChecks: wsdest whose Kafka broker does not answer. The WebSocket
// connects, and the header says the data is unavailable and why, instead of
// a green "connected" over silence.
async function downChecks() {
  const origin = `http://127.0.0.1:${opts['down-port']}`;
  const w = await open(`${origin}/`, origin);
  const ok = await until(w.tab, () => window.wsdestViewer.state === 'data unavailable: Kafka broker unreachable');
  const s = await viewerState(w.tab);
  const cls = await w.tab.evaluate(() => document.getElementById('conn').className);
  await w.tab.screenshot({ path: `${opts.shots}/viewer-unavailable.png` });
  report(ok && cls.includes('state-unavailable') && s.total === 1 && w.errors.length === 0,
    'viewer (broker down): the header says the data is unavailable and why', `${JSON.stringify(s)} class=${cls} errors=${JSON.stringify(w.errors.slice(0, 3))}`);
  await w.context.close();
}

// quietChecks: a wsdest whose demo produced one round of the four sensors
// at start-up and nothing since (DEMO_INTERVAL=1h). The page opens full: a
// tile per sensor from the snapshot, before any live record, and the
// snapshot_end notice.
async function quietChecks() {
  const origin = `http://127.0.0.1:${opts['quiet-port']}`;
  const w = await open(`${origin}/`, origin);
  const sensors = ['sensor-1', 'sensor-2', 'sensor-3', 'sensor-4'];
  const ok = await until(w.tab, (want) => want.every((k) => window.wsdestViewer.keys.includes(k)) &&
    document.querySelectorAll('#latest .field[data-field="temperature"]').length >= 4, sensors);
  const s = await viewerState(w.tab);
  const log = await w.tab.evaluate(() => document.getElementById('log').textContent);
  await w.tab.screenshot({ path: `${opts.shots}/viewer-snapshot.png` });
  report(ok && s.state === 'connected' && s.total === 5 && log.includes('"notice":"snapshot_end","keys":4') && w.errors.length === 0,
    'viewer (quiet topic): the tiles are full on open, from the snapshot (four sensors produced once, long before the page opened)',
    `${JSON.stringify(s)} errors=${JSON.stringify(w.errors.slice(0, 3))}`);
  await w.context.close();
}

// nosnapChecks: a wsdest with SNAPSHOT=false answers snapshot=true with
// 400, which a browser sees as a failed connection: the page goes on
// without a snapshot and streams.
async function nosnapChecks() {
  const origin = `http://127.0.0.1:${opts['nosnap-port']}`;
  const w = await open(`${origin}/`, origin);
  const sensors = ['sensor-1', 'sensor-2', 'sensor-3', 'sensor-4'];
  const ok = await until(w.tab, (want) => window.wsdestViewer.state === 'connected' && want.every((k) => window.wsdestViewer.keys.includes(k)), sensors);
  const s = await viewerState(w.tab);
  report(ok && w.errors.every((e) => e.includes('WebSocket connection to')),
    'viewer (SNAPSHOT=false): the page goes on without a snapshot and streams', `${JSON.stringify(s)} errors=${JSON.stringify(w.errors.slice(0, 3))}`);
  await w.context.close();
}

try {
  if (opts['restart-port']) await restartChecks();
  else if (opts['nosnap-port']) await nosnapChecks();
  else if (opts['down-port']) await downChecks();
  else if (opts['quiet-port']) await quietChecks();
  else {
    await openChecks();
    await mockChecks();
    await resumeChecks();
    await authChecks();
    await basicChecks();
  }
} catch (e) {
  report(false, 'viewer: run the checks', String(e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
process.exit(checks.failed ? 1 : 0);

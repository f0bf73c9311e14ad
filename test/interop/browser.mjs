// Browser checks of a running wsdest: Debian's Chromium, driven by
// playwright-core (which never downloads a browser), loads www/client.html
// (the README's JavaScript client) from a local static server and connects to
// wsdest from that page, a different origin, as a web app would.
//
//   node browser.mjs --open-port P --auth-port P2 --key K
//
// P serves demo data without auth; P2 serves demo data with AUTH_API_KEYS=K.
// Every check prints "PASS <what>" or "FAIL <what>: <why>"; the exit status
// is 1 if any failed.

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const TIMEOUT = 15_000; // ms any single wait may take

const { values: opts } = parseArgs({
  options: {
    'open-port': { type: 'string' },
    'auth-port': { type: 'string' },
    key: { type: 'string' },
  },
});
for (const name of ['open-port', 'auth-port', 'key']) {
  if (!opts[name]) {
    console.error(`browser.mjs: --${name} is required`);
    process.exit(2);
  }
}

let failed = 0;
function report(ok, what, why = '') {
  if (ok) {
    console.log(`PASS ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}: ${why}`);
  }
}

// A static server for the client page; port 0 so no port can clash.
const page = await readFile(new URL('./www/client.html', import.meta.url));
const server = http.createServer((req, res) => {
  if (new URL(req.url, 'http://x').pathname === '/client.html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page);
  } else {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const pageBase = `http://127.0.0.1:${server.address().port}/client.html`;

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 60_000,
    // Without the network flags Chromium keeps trying to reach Google's
    // services, which a closed network makes it hang on.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
} catch (e) {
  report(false, 'browser: launch Chromium', String(e));
  server.close();
  process.exit(1);
}

// open loads the client page for wsURL and waits until pred(state) holds;
// it returns the page's state and the page errors (uncaught exceptions, such
// as a JSON.parse failure in onmessage).
async function open(wsURL, pred) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const pageErrors = [];
  const consoleErrors = [];
  tab.on('pageerror', (e) => pageErrors.push(String(e)));
  tab.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  try {
    await tab.goto(`${pageBase}?url=${encodeURIComponent(wsURL)}`, { timeout: TIMEOUT });
    let timedOut = false;
    try {
      await tab.waitForFunction(pred, null, { timeout: TIMEOUT, polling: 50 });
    } catch {
      timedOut = true;
    }
    const state = await tab.evaluate(() => window.state);
    return { state, pageErrors, consoleErrors, timedOut };
  } finally {
    await context.close();
  }
}

function summary(r) {
  const s = r.state;
  return `opened=${s.opened} messages=${s.messages.length} errors=${s.errors} ` +
    `closed=${JSON.stringify(s.closed)} pageErrors=${JSON.stringify(r.pageErrors.slice(0, 3))} ` +
    `consoleErrors=${JSON.stringify(r.consoleErrors.slice(0, 3))}` +
    (r.timedOut ? ` (timed out after ${TIMEOUT} ms)` : '');
}

const isRow = (m) => m !== null && typeof m === 'object' && !Array.isArray(m) && 'Timestamp' in m;

async function run() {
  const openWS = `ws://127.0.0.1:${opts['open-port']}/ws`;
  const authWS = `ws://127.0.0.1:${opts['auth-port']}/ws`;

  let r = await open(openWS, () => window.state.messages.length >= 5 || window.state.closed);
  report(r.state.opened && r.state.messages.length >= 5 && r.state.messages.every(isRow) &&
    r.pageErrors.length === 0 && r.state.errors === 0,
  `browser: new WebSocket('${openWS}') receives demo records that JSON.parse to rows`, summary(r));

  const keyed = `ws://127.0.0.1:${opts['open-port']}/ws/sensor-2?envelope=true`;
  r = await open(keyed, () => window.state.messages.length >= 3 || window.state.closed);
  const envOK = r.state.messages.every((m) => m.topic === 'input' && m.key === 'sensor-2' && isRow(m.value));
  report(r.state.messages.length >= 3 && envOK && r.pageErrors.length === 0,
    `browser: ${keyed} receives only sensor-2, in envelopes`,
    `${summary(r)} first=${JSON.stringify(r.state.messages[0])}`);

  for (const [what, url, reason] of [
    ['a bad token', `${authWS}?token=bad`, 'credential not accepted'],
    ['no token', authWS, 'no credential: use ?token=KEY, Authorization: Bearer or Basic'],
    ['?access_token=', `${authWS}?access_token=${opts.key}`, 'no credential: use ?token=KEY, Authorization: Bearer or Basic'],
  ]) {
    r = await open(url, () => window.state.closed !== null);
    const c = r.state.closed;
    report(c !== null && c.code === 1008 && c.reason === reason && r.state.messages.length === 0,
      `browser: with auth on, ${what} sees onclose with code 1008 and reason "${reason}"`, summary(r));
  }

  const good = `${authWS}?token=${opts.key}`;
  r = await open(good, () => window.state.messages.length >= 3 || window.state.closed);
  report(r.state.opened && r.state.messages.length >= 3 && r.state.messages.every(isRow) &&
    r.pageErrors.length === 0,
  'browser: with auth on, ?token=<good key> receives demo records', summary(r));
}

try {
  await run();
} catch (e) {
  report(false, 'browser: run the checks', String(e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);

// Browser checks of a wsdest serving TLS: Debian's Chromium, driven by
// playwright-core, trusts the server's certificate by its public key
// (--ignore-certificate-errors-spki-list, Chromium's way to pin a test
// certificate) and runs the README's client (www/client.html) from pages
// whose origin Playwright sets by serving them at https://app.example.com
// (allowed) and https://app.example.com.evil.io (not allowed).
//
//   node browser_tls.mjs --port P --spki BASE64-SHA256-OF-SPKI
//
// wsdest runs with TLS on P, demo data and
// ALLOWED_ORIGINS=https://app.example.com,https://*.example.org.
// Every check prints "PASS <what>" or "FAIL <what>: <why>".

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Checks, launchChromium } from './lib.mjs';

const TIMEOUT = 15_000;
const { values: opts } = parseArgs({ options: { port: { type: 'string' }, spki: { type: 'string' } } });
if (!opts.port || !opts.spki) {
  console.error('browser_tls.mjs: --port and --spki are required');
  process.exit(2);
}

const checks = new Checks();
const report = checks.report.bind(checks);
const page = await readFile(new URL('./www/client.html', import.meta.url));
let browser;
try {
  browser = await launchChromium([
    // The pages play public origins connecting to 127.0.0.1, which
    // Chromium's Local Network Access checks would block on its side,
    // before wsdest could decide.
    '--disable-features=LocalNetworkAccessChecks',
    `--ignore-certificate-errors-spki-list=${opts.spki}`,
  ]);
} catch (e) {
  report(false, 'browser tls: launch Chromium', String(e));
  process.exit(1);
}

// open serves the client page at origin (without any network) and waits
// until pred(state) holds; it returns the page's state.
async function open(origin, wsURL, pred) {
  const context = await browser.newContext();
  await context.route(`${origin}/**`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: page }));
  const tab = await context.newPage();
  try {
    await tab.goto(`${origin}/client.html?url=${encodeURIComponent(wsURL)}`, { timeout: TIMEOUT });
    try {
      await tab.waitForFunction(pred, null, { timeout: TIMEOUT, polling: 50 });
    } catch {
      // reported through the state below
    }
    return await tab.evaluate(() => window.state);
  } finally {
    await context.close();
  }
}

// originRejections reads wsdest_rejected_total{reason="origin"} from
// /metrics (Node trusts the test CA through NODE_EXTRA_CA_CERTS).
async function originRejections() {
  const text = await (await fetch(`https://127.0.0.1:${opts.port}/metrics`)).text();
  const m = text.match(/^wsdest_rejected_total\{reason="origin"\} (\S+)$/m);
  return m ? Number(m[1]) : NaN;
}

const wss = `wss://127.0.0.1:${opts.port}/ws`;
try {
  let s = await open('https://app.example.com', wss, () => window.state.messages.length >= 3 || window.state.closed);
  report(s.opened && s.messages.length >= 3 && s.messages.every((m) => m && typeof m === 'object'),
    `browser tls: a page at https://app.example.com receives records over ${wss}`, JSON.stringify(s).slice(0, 300));

  s = await open('https://a.b.example.org', wss, () => window.state.messages.length >= 1 || window.state.closed);
  report(s.opened && s.messages.length >= 1,
    'browser tls: a page at https://a.b.example.org (pattern *.example.org) connects', JSON.stringify(s).slice(0, 300));

  const before = await originRejections();
  s = await open('https://app.example.com.evil.io', wss, () => window.state.closed !== null);
  const after = await originRejections();
  report(!s.opened && s.closed !== null && s.closed.code === 1006 && s.messages.length === 0 && after === before + 1,
    'browser tls: a page at https://app.example.com.evil.io is refused by wsdest before the handshake (onclose 1006, one origin rejection counted)',
    `${JSON.stringify(s).slice(0, 300)} origin rejections ${before} -> ${after}`);
} catch (e) {
  report(false, 'browser tls: run the checks', String(e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
process.exit(checks.failed ? 1 : 0);

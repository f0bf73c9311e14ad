// Chromium's own EventSource reconnecting to a restarted wsdest with
// nothing lost. The page is one of wsdest's own (/healthz), so that the
// EventSource is same-origin, as a dashboard served next to the stream.
//
//   node sse_restart.mjs --bin WSDEST --broker HOST:PORT --port P --log FILE --env "K=V\n..."
//
// Prints PASS/FAIL lines; exit status 1 if any failed.

import { parseArgs } from 'node:util';
import { WsdestProcess, launchChromium } from './lib.mjs';

const TIMEOUT = 20_000;
const { values: opts } = parseArgs({
  options: {
    bin: { type: 'string' }, broker: { type: 'string' }, port: { type: 'string' },
    log: { type: 'string' }, env: { type: 'string' },
  },
});
let failed = 0;
function report(ok, what, why = '') {
  if (ok) console.log(`PASS ${what}`);
  else { failed++; console.log(`FAIL ${what}: ${why}`); }
}

const wsdest = new WsdestProcess({ bin: opts.bin, port: opts.port, broker: opts.broker, log: opts.log, env: opts.env });

let browser;
try {
  wsdest.start();
  report(await wsdest.ready(TIMEOUT), `sse_restart: wsdest ready on :${opts.port} (broker ${opts.broker})`);
  browser = await launchChromium();
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${opts.port}/healthz`, { timeout: TIMEOUT });
  // docs/protocol.md's example: EventSource needs no code to resume.
  await tab.evaluate(() => {
    window.state = { events: [], opens: 0, errors: 0, notices: [], bad: [] };
    const es = new EventSource('/sse?envelope=true');
    es.onopen = () => { window.state.opens++; };
    es.onerror = () => { window.state.errors++; };
    es.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.notice) { window.state.notices.push(m); return; }
      if (e.lastEventId !== m.cursor) window.state.bad.push(`id ${e.lastEventId} != cursor ${m.cursor}`);
      window.state.events.push([m.partition, m.offset]);
    };
  });
  const count = () => tab.evaluate(() => window.state.events.length);
  await tab.waitForFunction(() => window.state.events.length >= 20, null, { timeout: TIMEOUT, polling: 50 });
  report(true, 'sse_restart: EventSource receives demo records');

  await wsdest.stop();
  const atStop = await count();
  await new Promise((r) => setTimeout(r, 1500)); // records keep coming meanwhile
  wsdest.start();
  report(await wsdest.ready(TIMEOUT), 'sse_restart: wsdest restarted on the same port');
  const want = atStop + 80;
  let ok = true;
  try {
    await tab.waitForFunction((n) => window.state.events.length >= n && window.state.opens >= 2, want,
      { timeout: TIMEOUT, polling: 50 });
  } catch { ok = false; }
  const s = await tab.evaluate(() => window.state);
  report(ok, 'sse_restart: EventSource reconnected by itself and records flow again',
    `opens=${s.opens} errors=${s.errors} events=${s.events.length} (want ${want})`);

  // Nothing lost, nothing twice: each partition's offsets go up by one.
  const last = new Map();
  const problems = [...s.bad];
  for (const [p, o] of s.events) {
    if (last.has(p) && o !== last.get(p) + 1) problems.push(`partition ${p}: offset ${o} after ${last.get(p)}`);
    last.set(p, o);
  }
  if (s.notices.length) problems.push(`notices ${JSON.stringify(s.notices)}`);
  report(problems.length === 0 && last.size > 0,
    `sse_restart: ${s.events.length} records over ${last.size} partitions across the restart, none lost or repeated`,
    problems.slice(0, 5).join('; '));
} catch (e) {
  report(false, 'sse_restart: run the checks', String(e && e.stack ? e.stack : e));
} finally {
  if (browser) await browser.close();
  await wsdest.stop();
}
process.exit(failed ? 1 : 0);

// Measures the viewer under load (a benchmark, not a test: it asserts
// nothing). Opens http://127.0.0.1:PORT/ in headless Chromium, prints
// "ready" once the page is connected, then samples for --seconds and prints
// one JSON line: records the page received per second, animation frames
// per second, the longest gap between frames, the main thread's long tasks
// (over 50 ms, from PerformanceObserver) and the JS heap at the end.
//
//   node viewer_bench.mjs --port P --seconds 20 [--shot FILE]
//
// Run it through viewer_bench.sh, which supplies the load.

import { parseArgs } from 'node:util';
import { launchChromium } from './lib.mjs';

const { values: opts } = parseArgs({
  options: { port: { type: 'string' }, seconds: { type: 'string', default: '20' }, shot: { type: 'string' } },
});
const seconds = Number(opts.seconds);
const browser = await launchChromium(['--enable-precise-memory-info']);
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const tab = await context.newPage();
  await tab.goto(`http://127.0.0.1:${opts.port}/`);
  await tab.waitForFunction(() => window.wsdestViewer.state === 'connected', null, { timeout: 15_000 });
  await tab.evaluate(() => {
    window.benchLong = { n: 0, ms: 0, max: 0 };
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.benchLong.n++; window.benchLong.ms += e.duration; window.benchLong.max = Math.max(window.benchLong.max, e.duration);
      }
    }).observe({ type: 'longtask', buffered: false });
  });
  console.log('ready');
  // Let the load start before sampling.
  await tab.waitForFunction(() => window.wsdestViewer.total > 0, null, { timeout: 15_000 });
  await tab.waitForTimeout(2000);
  const r = await tab.evaluate((secs) => new Promise((resolve) => {
    const t0 = performance.now(), n0 = window.wsdestViewer.total, long0 = { ...window.benchLong };
    let frames = 0, last = t0, maxGap = 0;
    const gaps = [];
    function tick(now) {
      frames++;
      gaps.push(now - last);
      maxGap = Math.max(maxGap, now - last);
      last = now;
      if (now - t0 < secs * 1000) requestAnimationFrame(tick);
      else {
        gaps.sort((a, b) => a - b);
        const dt = (now - t0) / 1000;
        resolve({
          records_per_s: Math.round((window.wsdestViewer.total - n0) / dt),
          frames_per_s: Math.round(frames / dt),
          frame_gap_p99_ms: Math.round(gaps[Math.floor(gaps.length * 0.99)]),
          frame_gap_max_ms: Math.round(maxGap),
          long_tasks: window.benchLong.n - long0.n,
          long_task_ms_per_s: Math.round((window.benchLong.ms - long0.ms) / dt),
          long_task_max_ms: Math.round(window.benchLong.max),
          heap_mb: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1e6) : null,
          state: window.wsdestViewer.state,
          keys: window.wsdestViewer.keys.length,
        });
      }
    }
    requestAnimationFrame(tick);
  }), seconds);
  if (opts.shot) await tab.screenshot({ path: opts.shot });
  if (process.env.VIEWER_BENCH_PROFILE) {
    // Where the page's main thread spends its time: self time per function.
    const cdp = await context.newCDPSession(tab);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.start');
    await tab.waitForTimeout(5000);
    const { profile } = await cdp.send('Profiler.stop');
    const self = new Map();
    const dt = profile.timeDeltas;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const f = byId.get(id).callFrame;
      const k = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
      self.set(k, (self.get(k) || 0) + (dt[i] || 0));
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.error([...self].sort((a, b) => b[1] - a[1]).slice(0, 15)
      .map(([k, v]) => `${(100 * v / total).toFixed(1)}% ${k}`).join('\n'));
  }
  console.log(JSON.stringify(r));
} finally {
  await browser.close();
}

// Helpers shared by the browser scripts (viewer.mjs, viewer_bench.mjs,
// browser_tls.mjs).

import { chromium } from 'playwright-core';

// launchChromium starts Debian's Chromium ($CHROMIUM, default
// /usr/bin/chromium) headless. Without the network flags Chromium keeps
// trying to reach Google's services, which a closed network makes it hang on.
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 60_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

// Checks prints "PASS <what>" or "FAIL <what>: <why>" per check and counts
// the failures.
export class Checks {
  failed = 0;

  report(ok, what, why = '') {
    if (ok) {
      console.log(`PASS ${what}`);
    } else {
      this.failed++;
      console.log(`FAIL ${what}: ${why}`);
    }
  }
}

// Helpers shared by the browser scripts (viewer.mjs, viewer_bench.mjs,
// browser_tls.mjs, sse_restart.mjs, client.mjs).

import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
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

// WsdestProcess is the wsdest binary bin run on 127.0.0.1:port against the
// Kafka broker at broker (topic "input"), with only the variables of env
// ("K=V" lines, as lib.sh's clean_env prints them), output appended to
// log. The broker outlives it, so it can be stopped and started again.
export class WsdestProcess {
  #child = null;

  constructor({ bin, port, broker, log, env }) {
    const base = Object.fromEntries(env.split('\n').filter(Boolean).map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    }));
    this.bin = bin;
    this.port = port;
    this.log = log;
    this.env = { ...base, PORT: String(port), HOST: '127.0.0.1', Quix__Broker__Address: broker, input: 'input' };
  }

  start() {
    const out = openSync(this.log, 'a');
    const child = spawn(this.bin, [], { env: this.env, stdio: ['ignore', out, out] });
    // Not left running if the script dies of an uncaught exception.
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    child.once('exit', () => process.off('exit', kill));
    this.#child = child;
  }

  // ready waits up to timeout ms for /readyz to answer 200.
  async ready(timeout = 20_000) {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`http://127.0.0.1:${this.port}/readyz`)).ok) return true;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  // stop sends signal (SIGTERM: wsdest closes its clients with 1001) and
  // waits for the process to exit.
  async stop(signal = 'SIGTERM') {
    const c = this.#child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  }
}

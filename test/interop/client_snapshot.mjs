// The JavaScript client's snapshot edges, against a stand-in WebSocket (a
// unit test of client.js alone): snapshot with from or last throws, and a
// connection that drops mid-snapshot (after a snapshot record, before
// snapshot_end) dispatches the notice snapshot_incomplete, then resumes
// from the snapshot point. Prints PASS or FAIL lines (run_checker).
import { connect } from '../../internal/web/static/client.js';

const problems = [];

for (const extra of [{ from: 'AQ' }, { last: 5 }]) {
  try {
    connect('ws://127.0.0.1:1/ws', { snapshot: true, ...extra, WebSocket: class {} });
    problems.push(`snapshot with ${JSON.stringify(extra)} did not throw`);
  } catch (err) {
    if (!(err instanceof TypeError)) problems.push(`snapshot with ${JSON.stringify(extra)}: ${err}`);
  }
}

const sockets = [];
class FakeWS {
  constructor(url) { this.url = url; sockets.push(this); }
  close() {}
}
const stream = connect('ws://127.0.0.1:1/ws', { snapshot: true, WebSocket: FakeWS, minDelay: 1, maxDelay: 1 });
const notices = [];
stream.addEventListener('notice', (e) => notices.push(e.detail));
await new Promise((r) => setTimeout(r, 10));
const first = sockets[0];
if (!first || !new URL(first.url).searchParams.has('snapshot')) problems.push(`first connection ${first && first.url} does not ask for a snapshot`);
first.onopen();
const point = 'AQAAAAAAAAAAAAAAAAABCQDrgA';
first.onmessage({ data: JSON.stringify({ topic: 't', partition: 0, offset: 3, timestamp: 0, key: 'a', headers: {}, value: 1, cursor: point }) });
first.onclose({ code: 1006, reason: '' });
await new Promise((r) => setTimeout(r, 20));
if (!notices.some((n) => n.notice === 'snapshot_incomplete' && n.cursor === point)) problems.push(`no snapshot_incomplete notice: ${JSON.stringify(notices)}`);
const second = sockets[1];
if (!second || new URL(second.url).searchParams.get('from') !== point || new URL(second.url).searchParams.has('snapshot')) {
  problems.push(`the reconnect ${second && second.url} does not resume from the snapshot point`);
}
stream.close();
for (const p of problems) console.log(`FAIL client: ${p}`);
if (!problems.length) console.log('PASS client: snapshot with from or last throws; a drop mid-snapshot dispatches snapshot_incomplete and resumes from the point');
process.exit(problems.length ? 1 : 0);

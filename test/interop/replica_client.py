#!/usr/bin/env python3
"""Clients of wsdest through a load balancer that must lose nothing.

    replica_client.py --url ws://HOST:PORT/ws --stop FILE [--droppers N] [--stayers M] [--drop-every S]

Droppers close their connection every --drop-every seconds and reconnect
with the cursor of the last envelope they got (from=CURSOR); stayers keep
theirs until the server closes it or it breaks (a replica killed, or
stopped with 1001), then do the same. Every client checks its own stream:
per partition, offsets must follow each other with no gap and no repeat
(the dev broker's topic is neither compacted nor transactional, so its
offsets are contiguous). Each connection's URL carries client=NAME-CONN, so
that the proxy's access log tells which replica served it.

When FILE exists the clients stop and one JSON line is printed:
{"clients": {NAME: {"records", "connections", "gaps", "dups", "notices",
"errors"}}}. Exit status 0.
"""

import argparse
import asyncio
import json
import os
import time
import urllib.parse

import websockets
from websockets.exceptions import ConnectionClosed


class Stream:
    def __init__(self, name):
        self.name = name
        self.next = {}  # partition -> next offset expected
        self.records = 0
        self.connections = 0
        self.gaps = []
        self.dups = []
        self.notices = []
        self.errors = []
        self.cursor = None

    def take(self, raw):
        msg = json.loads(raw)
        if "notice" in msg:
            self.notices.append(msg)
            return
        p, o = msg["partition"], msg["offset"]
        want = self.next.get(p)
        if want is not None and o < want:
            self.dups.append([p, o, want])
        elif want is not None and o > want:
            self.gaps.append([p, want, o])
        self.next[p] = max(o + 1, want or 0)
        self.records += 1
        self.cursor = msg["cursor"]

    def summary(self):
        return {
            "records": self.records,
            "connections": self.connections,
            "gaps": self.gaps[:10],
            "dups": self.dups[:10],
            "notices": self.notices[:10],
            "errors": self.errors[-5:],
        }


def stopped(path):
    return os.path.exists(path)


async def run(base, stream, stop, drop_every):
    while not stopped(stop):
        stream.connections += 1
        q = {"envelope": "true", "client": f"{stream.name}-{stream.connections}"}
        if stream.cursor:
            q["from"] = stream.cursor
        url = base + "?" + urllib.parse.urlencode(q)
        deadline = time.monotonic() + drop_every if drop_every else None
        try:
            async with websockets.connect(url, open_timeout=5, close_timeout=2) as ws:
                while not stopped(stop):
                    timeout = 0.25
                    if deadline is not None:
                        timeout = min(timeout, deadline - time.monotonic())
                        if timeout <= 0:
                            break
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout)
                    except asyncio.TimeoutError:
                        continue
                    stream.take(raw)
        except (ConnectionClosed, OSError, asyncio.TimeoutError) as e:
            stream.errors.append(f"{type(e).__name__}: {e}"[:200])
            await asyncio.sleep(0.1)
        except Exception as e:  # noqa: BLE001  (an invalid status: a replica going away mid-handshake)
            stream.errors.append(f"{type(e).__name__}: {e}"[:200])
            await asyncio.sleep(0.2)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--droppers", type=int, default=1)
    ap.add_argument("--stayers", type=int, default=6)
    ap.add_argument("--drop-every", type=float, default=1.0)
    args = ap.parse_args()
    streams = [Stream(f"dropper{i}") for i in range(args.droppers)]
    streams += [Stream(f"stayer{i}") for i in range(args.stayers)]
    await asyncio.gather(*(
        run(args.url, s, args.stop, args.drop_every if s.name.startswith("dropper") else 0) for s in streams
    ))
    print(json.dumps({"clients": {s.name: s.summary() for s in streams}}), flush=True)


asyncio.run(main())

#!/usr/bin/python3
"""WebSocket checks of a running wsdest, from Python's `websockets` library.

Run with Debian's /usr/bin/python3 and its python3-websockets (10.4 on
Debian 12; newer releases work too). Every check prints one line,
"PASS <what>" or "FAIL <what>: <why>"; the exit status is 1 if any failed.

  ws_check.py kcat --port P --broker HOST:PORT
      wsdest runs with the dev broker and DEMO_DATA=false. Records produced
      with kcat (librdkafka) must reach /ws, /ws/<key>, ?key= and
      ?envelope=true clients; a value that is not JSON is skipped in the
      plain shape.
  ws_check.py auth --port P --key K --user U --password W
      wsdest runs with AUTH_API_KEYS=K, WS_USERNAME=U, WS_PASSWORD=W and demo
      data. Missing and bad credentials get close 1008 with a reason that says what to do; good ones get data.
  ws_check.py recv --url URL [--count N] [--name NAME]
      N messages (default 3) arrive within the timeout, each a JSON object.
"""

import argparse
import asyncio
import base64
import json
import shutil
import sys

import websockets
from websockets.exceptions import ConnectionClosed

from checklib import TIMEOUT, exit_status, report


def connect(url, headers=None):
    """Opens a client connection; the header argument's name changed in 14."""
    kwargs = {"open_timeout": TIMEOUT, "close_timeout": 2}
    if headers:
        major = int(websockets.version.version.split(".")[0])
        kwargs["additional_headers" if major >= 14 else "extra_headers"] = headers
    return websockets.connect(url, **kwargs)


def close_info(exc):
    """Returns (code, reason) of the close frame the server sent, if any."""
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return rcvd.code, rcvd.reason
    return getattr(exc, "code", None), getattr(exc, "reason", None)


class Reader:
    """Collects every message of one connection in the background."""

    def __init__(self, name, ws):
        self.name, self.ws = name, ws
        self.messages = []  # decoded JSON values, in arrival order
        self.errors = []  # problems: non-text frames, unparsable JSON
        self.changed = asyncio.Event()
        self.closed = None  # (code, reason) once the connection ends
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        try:
            async for raw in self.ws:
                if not isinstance(raw, str):
                    self.errors.append(f"binary frame of {len(raw)} bytes")
                else:
                    try:
                        self.messages.append(json.loads(raw))
                    except ValueError:
                        self.errors.append(f"not JSON: {raw[:80]!r}")
                self.changed.set()
        except ConnectionClosed as e:
            self.closed = close_info(e)
        except Exception as e:  # noqa: BLE001 - a reset or a protocol error ends the reader too
            self.errors.append(repr(e))
            self.closed = (None, repr(e))
        else:
            self.closed = (self.ws.close_code, self.ws.close_reason)
        self.changed.set()

    async def wait_for(self, pred, timeout=TIMEOUT):
        """Waits until pred(messages) is true; returns whether it became so."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred(self.messages):
            if self.closed is not None:
                return False
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                return pred(self.messages)
        return True

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass
        await self.ws.close()


async def kcat_produce(broker, lines):
    """Produces KEY:VALUE lines with kcat; returns None or an error text."""
    kcat = shutil.which("kcat")
    if kcat is None:
        return "kcat is not installed"
    proc = await asyncio.create_subprocess_exec(
        kcat, "-P", "-b", broker, "-t", "input", "-K:",
        "-X", "message.timeout.ms=10000",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    data = "".join(line + "\n" for line in lines).encode()
    try:
        out, _ = await asyncio.wait_for(proc.communicate(data), TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return "kcat -P timed out"
    if proc.returncode != 0:
        return f"kcat -P exited {proc.returncode}: {out.decode(errors='replace').strip()}"
    return None


def plain(msgs):
    """The non-probe plain messages, i.e. objects from the test batch."""
    return [m for m in msgs if not (isinstance(m, dict) and "probe" in m)]


def env_values(msgs):
    return [m.get("value") for m in msgs
            if isinstance(m, dict) and not (isinstance(m.get("value"), dict) and "probe" in m["value"])]


async def cmd_kcat(args):
    base = f"ws://127.0.0.1:{args.port}"
    readers = {}
    for name, path in [("all", "/ws"), ("key", "/ws/dev-1"), ("query", "/ws?key=dev-2"),
                       ("envelope", "/ws/dev-1?envelope=true")]:
        try:
            readers[name] = Reader(name, await connect(base + path))
        except Exception as e:  # noqa: BLE001 - report any connect failure
            report(False, f"kcat: connect {path}", repr(e))
            return
    report(True, "kcat: /ws, /ws/dev-1, /ws?key=dev-2 and ?envelope=true connected")
    try:
        # wsdest starts at the latest offset, and a client only sees records
        # published after it joined: produce probes until every connection
        # has one, so that the records below cannot be missed.
        probe_keys = {"all": "dev-1", "key": "dev-1", "query": "dev-2", "envelope": "dev-1"}

        def probed(r):
            if r.name == "envelope":
                return any(isinstance(m, dict) and isinstance(m.get("value"), dict)
                           and "probe" in m["value"] for m in r.messages)
            return any(isinstance(m, dict) and "probe" in m for m in r.messages)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        n = 0
        while not all(probed(r) for r in readers.values()):
            if loop.time() > deadline:
                report(False, "kcat: probe records reach every client",
                       "missing on " + ", ".join(r.name for r in readers.values() if not probed(r)))
                return
            n += 1
            err = await kcat_produce(args.broker, [f'{k}:{{"probe":{n}}}' for k in sorted(set(probe_keys.values()))])
            if err:
                report(False, "kcat: produce probe records", err)
                return
            await asyncio.gather(*(r.wait_for(lambda _m, r=r: probed(r), 1.0) for r in readers.values()))
        report(True, f"kcat: probe records reach every client (after {n} round(s))")

        batch = [
            'dev-1:{"n":1,"k":"dev-1","temperature":21.5}',
            'dev-2:{"n":2,"k":"dev-2","temperature":22.25}',
            "dev-1:this line is not JSON",
            'dev-1:{"n":3,"k":"dev-1","after":"not-json"}',
            'dev-2:{"n":4,"k":"dev-2","nested":{"a":[1,2,3],"s":"h\u00e9llo \u2713"}}',
            'dev-1:{"n":"end","k":"dev-1"}',
            'dev-2:{"n":"end","k":"dev-2"}',
        ]
        err = await kcat_produce(args.broker, batch)
        report(err is None, "kcat: kcat -P -K: produced 7 records", err or "")
        if err:
            return

        def ends(keys):
            return lambda msgs: {m.get("k") for m in plain(msgs)
                                 if isinstance(m, dict) and m.get("n") == "end"} >= keys

        r = readers["all"]
        ok = await r.wait_for(ends({"dev-1", "dev-2"}))
        got = plain(r.messages)
        ns = [m.get("n") for m in got if isinstance(m, dict)]
        report(ok and sorted(map(str, ns)) == sorted(["1", "2", "3", "4", "end", "end"]) and not r.errors,
               "kcat: /ws received every JSON record and nothing else",
               f"got n={ns} errors={r.errors} closed={r.closed}")
        d1 = [m.get("n") for m in got if isinstance(m, dict) and m.get("k") == "dev-1"]
        report(d1 == [1, 3, "end"], "kcat: /ws: the non-JSON value is skipped and the JSON record after it arrives, in order",
               f"dev-1 sequence {d1}")
        want4 = {"n": 4, "k": "dev-2", "nested": {"a": [1, 2, 3], "s": "h\u00e9llo \u2713"}}
        report(want4 in got, "kcat: /ws: values arrive verbatim (nested JSON, UTF-8)", f"got {got}")

        r = readers["key"]
        ok = await r.wait_for(ends({"dev-1"}))
        keys = {m.get("k") for m in plain(r.messages) if isinstance(m, dict)}
        ns = [m.get("n") for m in plain(r.messages) if isinstance(m, dict)]
        report(ok and keys == {"dev-1"} and ns == [1, 3, "end"] and not r.errors,
               "kcat: /ws/dev-1 receives only key dev-1", f"n={ns} keys={keys} errors={r.errors}")

        r = readers["query"]
        ok = await r.wait_for(ends({"dev-2"}))
        keys = {m.get("k") for m in plain(r.messages) if isinstance(m, dict)}
        ns = [m.get("n") for m in plain(r.messages) if isinstance(m, dict)]
        report(ok and keys == {"dev-2"} and ns == [2, 4, "end"] and not r.errors,
               "kcat: /ws?key=dev-2 receives only key dev-2", f"n={ns} keys={keys} errors={r.errors}")

        r = readers["envelope"]
        ok = await r.wait_for(lambda msgs: any(isinstance(v, dict) and v.get("n") == "end"
                                               for v in env_values(msgs)))
        envs = [m for m in r.messages if isinstance(m, dict)
                and not (isinstance(m.get("value"), dict) and "probe" in m["value"])]
        values = [m.get("value") for m in envs]
        shape_ok = all(m.get("topic") == "input" and m.get("key") == "dev-1"
                       and isinstance(m.get("partition"), int) and isinstance(m.get("offset"), int)
                       for m in envs)
        report(ok and shape_ok and not r.errors
               and values == [{"n": 1, "k": "dev-1", "temperature": 21.5}, "this line is not JSON",
                              {"n": 3, "k": "dev-1", "after": "not-json"}, {"n": "end", "k": "dev-1"}],
               "kcat: /ws/dev-1?envelope=true: topic, key, partition, offset; non-JSON text as a JSON string",
               f"got {envs} errors={r.errors}")
    finally:
        await asyncio.gather(*(r.stop() for r in readers.values()))


NO_CREDENTIAL = "no credential: use ?token=KEY, Authorization: Bearer or Basic"
NOT_ACCEPTED = "credential not accepted"


async def expect_rejected(url, what, headers=None, want=NOT_ACCEPTED):
    try:
        async with connect(url, headers) as ws:
            try:
                msg = await asyncio.wait_for(ws.recv(), TIMEOUT)
                report(False, what, f"received a message: {str(msg)[:80]!r}")
            except ConnectionClosed as e:
                code, reason = close_info(e)
                report(code == 1008 and reason == want, what,
                       f"closed with {code} {reason!r}, want 1008 {want!r}")
    except ConnectionClosed as e:
        code, reason = close_info(e)
        report(code == 1008 and reason == want, what, f"closed with {code} {reason!r}")
    except asyncio.TimeoutError:
        report(False, what, f"no close within {TIMEOUT}s")
    except Exception as e:  # noqa: BLE001
        report(False, what, repr(e))


async def expect_data(url, what, headers=None, count=3):
    try:
        async with connect(url, headers) as ws:
            r = Reader(what, ws)
            ok = await r.wait_for(lambda m: len(m) >= count)
            good = ok and not r.errors and all(isinstance(m, dict) for m in r.messages)
            report(good, what, f"{len(r.messages)} messages, errors={r.errors}, closed={r.closed}")
            await r.stop()
    except Exception as e:  # noqa: BLE001
        report(False, what, repr(e))


def basic(user, password):
    cred = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": "Basic " + cred}


async def cmd_auth(args):
    base = f"ws://127.0.0.1:{args.port}/ws"
    await expect_rejected(base, "auth: no credentials -> close 1008 pointing at ?token=", want=NO_CREDENTIAL)
    await expect_rejected(base + "?api_key=" + args.key, "auth: ?api_key= counts as no credential -> close 1008 pointing at ?token=",
                          want=NO_CREDENTIAL)
    await expect_rejected(base + "?token=wrong-" + args.key, "auth: wrong ?token= -> close 1008 'credential not accepted'")
    await expect_rejected(base, "auth: wrong Basic password -> close 1008 'credential not accepted'",
                          basic(args.user, args.password + "x"))
    await expect_data(base + "?token=" + args.key, "auth: ?token=<good key> receives JSON data")
    await expect_data(base, "auth: Basic credentials in the Authorization header receive JSON data",
                      basic(args.user, args.password))
    await expect_data(base, "auth: Authorization: Bearer <good key> receives JSON data",
                      {"Authorization": "Bearer " + args.key})


async def cmd_recv(args):
    await expect_data(args.url, f"{args.name}: {args.count} JSON objects arrive on {args.url}", count=args.count)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kcat")
    k.add_argument("--port", required=True)
    k.add_argument("--broker", required=True)
    a = sub.add_parser("auth")
    a.add_argument("--port", required=True)
    a.add_argument("--key", required=True)
    a.add_argument("--user", required=True)
    a.add_argument("--password", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--url", required=True)
    r.add_argument("--count", type=int, default=3)
    r.add_argument("--name", default="recv")
    args = p.parse_args()
    asyncio.run({"kcat": cmd_kcat, "auth": cmd_auth, "recv": cmd_recv}[args.cmd](args))
    sys.exit(exit_status())


if __name__ == "__main__":
    main()

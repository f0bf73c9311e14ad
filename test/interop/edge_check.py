#!/usr/bin/python3
"""Checks of wsdest's production edges from Python's `websockets` and ssl.

  edge_check.py --port P --ca CA.pem

wsdest runs with TLS (a certificate for 127.0.0.1 and 127.0.0.2 signed by
CA.pem), ALLOWED_ORIGINS=https://app.example.com,https://*.example.org,
MAX_CONNECTIONS=6, MAX_CONNECTIONS_PER_IP=3, MAX_SUBSCRIPTION_KEYS=4 and demo
data. Every check prints "PASS <what>" or "FAIL <what>: <why>"; the exit
status is 1 if any failed.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import ssl
import struct
import sys
import urllib.request

import websockets

from checklib import TIMEOUT, exit_status, report


def status_of(exc):
    """The HTTP status of a refused handshake, across websockets versions."""
    for attr in ("status_code",):
        if hasattr(exc, attr):
            return getattr(exc, attr)
    resp = getattr(exc, "response", None)
    return getattr(resp, "status_code", None)


async def try_connect(url, ctx, origin=None, local=None):
    """Returns ("open", ws) or ("refused", status) or ("error", text)."""
    kwargs = {"ssl": ctx, "open_timeout": TIMEOUT, "close_timeout": 2}
    if origin:
        kwargs["origin"] = origin
    if local:
        kwargs["local_addr"] = (local, 0)
    try:
        ws = await websockets.connect(url, **kwargs)
        return "open", ws
    except websockets.exceptions.InvalidStatusCode as e:
        return "refused", status_of(e)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        st = status_of(e)
        if st:
            return "refused", st
        return "error", repr(e)


async def checks(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    base = f"wss://127.0.0.1:{port}"

    # wss:// with the CA-signed certificate; demo data arrives.
    kind, ws = await try_connect(base + "/ws", ctx)
    if kind != "open":
        report(False, "edges: wss:// connect with the test CA", f"{kind} {ws}")
        return
    try:
        got = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(3)]
        report(all(isinstance(g, dict) for g in got), "edges: wss:// client receives JSON records", repr(got))
    except Exception as e:  # noqa: BLE001
        report(False, "edges: wss:// client receives JSON records", repr(e))
    await ws.close()

    # A client that does not trust the CA is refused by its own TLS.
    kind, detail = await try_connect(base + "/ws", ssl.create_default_context())
    report(kind == "error" and "CERTIFICATE_VERIFY_FAILED" in str(detail),
           "edges: a client without the CA does not trust the server", f"{kind} {detail}")

    # Origins.
    for origin, want in [
        (None, "open"),
        ("https://app.example.com", "open"),
        ("https://a.example.org", "open"),
        ("https://other.example.com", 403),
        ("https://app.example.com.evil.io", 403),
    ]:
        kind, ws = await try_connect(base + "/ws", ctx, origin=origin)
        got = "open" if kind == "open" else ws
        if kind == "open":
            await ws.close()
        report(got == want, f"edges: origin {origin or '(none)'} -> {want}", f"got {kind} {got}")

    # Oversized subscription: 400 before the handshake, naming the limit.
    keys = "&".join(f"key=k{i}" for i in range(5))
    status, body = raw_get(port, ca, f"/ws?{keys}", upgrade=True)
    report(status == 400 and b"MAX_SUBSCRIPTION_KEYS" in body,
           "edges: 5 keys with MAX_SUBSCRIPTION_KEYS=4 -> 400 naming the limit", f"{status} {body[:120]!r}")

    # Limits: 3 held from 127.0.0.1 (the 4th gets 429), 3 from 127.0.0.2
    # (then the server is full: 503).
    held = []
    for i in range(3):
        kind, ws = await try_connect(base + "/ws", ctx, local="127.0.0.1")
        if kind == "open":
            held.append(ws)
    kind, st = await try_connect(base + "/ws", ctx, local="127.0.0.1")
    report(kind == "refused" and st == 429, "edges: 4th client from 127.0.0.1 -> 429", f"{kind} {st}")
    for i in range(3):
        kind, ws = await try_connect(f"wss://127.0.0.2:{port}/ws", ctx, local="127.0.0.2")
        if kind == "open":
            held.append(ws)
    report(len(held) == 6, "edges: 3 clients each from 127.0.0.1 and 127.0.0.2 held", f"{len(held)} held")
    kind, st = await try_connect(f"wss://127.0.0.2:{port}/ws", ctx, local="127.0.0.2")
    report(kind == "refused" and st == 503, "edges: 7th client -> 503 (MAX_CONNECTIONS=6)", f"{kind} {st}")
    status, _ = raw_get(port, ca, "/healthz")
    report(status == 200, "edges: /healthz answers at the connection limit", f"{status}")

    # /metrics over https, parsed: the held clients and the refusals.
    metrics = scrape(port, ca)
    conns = sum(v for k, v in metrics.items()
                if k.startswith('wsdest_connections{') and 'transport="websocket"' in k)
    report(conns == 6, "edges: /metrics wsdest_connections = 6", f"{conns}")
    for reason, want in [("origin", 2), ("max_connections_per_ip", 1), ("max_connections", 1), ("bad_request", 1)]:
        v = metrics.get(f'wsdest_rejected_total{{reason="{reason}"}}')
        report(v == want, f"edges: /metrics wsdest_rejected_total{{reason={reason}}} = {want}", f"{v}")
    for ws in held:
        await ws.close()

    # Invalid UTF-8 in a text message: close 1007.
    code = invalid_utf8_close(port, ca)
    report(code == 1007, "edges: a text message with invalid UTF-8 is closed with 1007", f"close code {code}")


def tls_socket(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def raw_get(port, ca, path, upgrade=False):
    """A GET over TLS with HTTP/1.1; returns (status, body)."""
    s = tls_socket(port, ca)
    hdr = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if upgrade:
        key = base64.b64encode(os.urandom(16)).decode()
        hdr = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n")
    s.sendall((hdr + "\r\n").encode())
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if upgrade and b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= content_length(data):
                break
    except (socket.timeout, ssl.SSLError):
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d+)", head)
    return (int(m.group(1)) if m else None), body


def content_length(data):
    m = re.search(rb"(?i)content-length: *(\d+)", data)
    return int(m.group(1)) if m else 0


def scrape(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=ctx, timeout=TIMEOUT) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def invalid_utf8_close(port, ca):
    s = tls_socket(port, ca)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            return None
        buf += chunk
    buf = buf.split(b"\r\n\r\n", 1)[1]
    payload = b"ok \xff\xfe"
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    # Read frames (demo data first) until the close frame.
    while True:
        while len(buf) < 2:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        n = buf[1] & 0x7F
        off = 2
        if n == 126:
            while len(buf) < 4:
                buf += s.recv(65536)
            n, off = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            while len(buf) < 10:
                buf += s.recv(65536)
            n, off = struct.unpack(">Q", buf[2:10])[0], 10
        while len(buf) < off + n:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        op, body, buf = buf[0] & 0x0F, buf[off:off + n], buf[off + n:]
        if op == 0x8:
            s.close()
            return struct.unpack(">H", body[:2])[0] if len(body) >= 2 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    args = ap.parse_args()
    asyncio.run(checks(args.port, args.ca))
    sys.exit(exit_status())


if __name__ == "__main__":
    main()

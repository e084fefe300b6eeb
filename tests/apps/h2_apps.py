"""Apps for the HTTP/2 tests (and the HTTP/1.1 extension tests).

/sleep-then-read?s=S   sleeps S seconds without touching receive(), then
                       reads the whole body; JSON {"length", "messages"}
/watch-upload?id=ID    reads the body message by message; writes
                       $CORMORANT_TEST_RESULTS/ID.waiting at the first one
                       and, when receive() yields something other than
                       http.request, ID.json {"type", "t", "received"}
/trailers              response with trailers: body "hello trailers", then
                       x-checksum: abc123 and grpc-status: 0; if the scope
                       does not advertise http.response.trailers the app
                       answers 200 "no trailers extension"
/early-hint            http.response.early_hint (one link), then 200 "hinted"
/hint-after-start      http.response.start, two http.response.early_hint
                       (sent whether or not the scope advertises them, as
                       frameworks do), then the body "hinted"
/hint-mid-body         start, body "a" (more_body), an early hint, body "b"
/pathsend?path=P       http.response.pathsend of file P
/extensions            JSON: sorted list of scope["extensions"] keys
/slow?s=S              sleeps, then 200 "done"
/hello                 200 "hello"
"""

import asyncio
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs


def _query(scope):
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


def _write(name, data):
    path = Path(os.environ["CORMORANT_TEST_RESULTS"]) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.rename(path)


async def _text(send, body, status=200):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    q = _query(scope)
    ext = scope.get("extensions") or {}

    if path == "/sleep-then-read":
        await asyncio.sleep(float(q.get("s", "1")))
        length = messages = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            messages += 1
            length += len(message.get("body", b""))
            more = message.get("more_body", False)
        out = json.dumps({"length": length, "messages": messages}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})
        return

    if path == "/watch-upload":
        ident = q["id"]
        received = 0
        first = True
        while True:
            message = await receive()
            if message["type"] != "http.request":
                _write(f"{ident}.json", {"type": message["type"], "t": time.monotonic(),
                                         "received": received})
                return
            received += len(message.get("body", b""))
            if first:
                _write(f"{ident}.waiting", {"t": time.monotonic()})
                first = False
            if not message.get("more_body", False):
                _write(f"{ident}.json", {"type": "complete", "t": time.monotonic(),
                                         "received": received})
                await _text(send, b"complete")
                return

    if path == "/trailers":
        if "http.response.trailers" not in ext:
            await _text(send, b"no trailers extension")
            return
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"trailers", "more_body": False})
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-checksum", b"abc123"), (b"grpc-status", b"0")]})
        return

    if path == "/early-hint":
        if "http.response.early_hint" in ext:
            await send({"type": "http.response.early_hint",
                        "links": [b"</style.css>; rel=preload; as=style"]})
        await _text(send, b"hinted")
        return

    if path == "/hint-after-start":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for link in (b"</a.css>; rel=preload; as=style", b"</b.js>; rel=preload; as=script"):
            await send({"type": "http.response.early_hint", "links": [link]})
        await send({"type": "http.response.body", "body": b"hinted"})
        return

    if path == "/hint-mid-body":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.early_hint", "links": [b"</late.css>; rel=preload"]})
        await send({"type": "http.response.body", "body": b"b"})
        return

    if path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": q["path"]})
        return

    if path == "/extensions":
        out = json.dumps(sorted(ext)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})
        return

    if path == "/slow":
        await asyncio.sleep(float(q.get("s", "1")))
        await _text(send, b"done")
        return

    await _text(send, b"hello")

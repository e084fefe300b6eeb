"""WebSocket flows, chosen by path.

/echo               accept, echo text and bytes until disconnect
/scope              accept, send the scope (bytes decoded latin-1) as JSON text
/subprotocol        accept with the client's last subprotocol and an extra header
/deny               close before accept (the client gets HTTP 403)
/deny-custom        websocket.http.response: 401 with a body
/server-close       accept, then close with 4001 "bye"
/record?id=ID       accept, wait for websocket.disconnect, write ID.json with it,
                    then try send() and record what it raised
/raise              accept, then raise (the client sees close 1011)
/cancelled-receive  accept, let a receive() time out (50 ms), pause 0.5 s, then
                    echo the next message
/cancelled-task     accept, have the task cancelled while it awaits receive(),
                    pause 0.5 s, then echo the next message
/no-reader          accept, never receive (for backpressure), echo nothing
/late-reader?n=N    accept, sleep 0.5 s, receive N messages without sending,
                    then send the count received as text
/bad-send           accept, then send a message with both text and bytes;
                    sends back the exception type and message as text
/flood?id=ID        accept, then send 64 KiB binary messages as fast as send()
                    allows, writing the count sent so far to ID.json
"""

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import parse_qs


def _write(name, data):
    path = Path(os.environ["CORMORANT_TEST_RESULTS"]) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.rename(path)


async def _echo_next_after_a_pause(receive, send):
    """Sleeps 0.5 s (a message comes meanwhile), then echoes the next one."""
    await asyncio.sleep(0.5)
    message = await receive()
    await send({"type": "websocket.send", "text": message.get("text") or "?"})


def _jsonable(v):
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    if scope["type"] != "websocket":
        return
    path = scope["path"]
    message = await receive()
    assert message["type"] == "websocket.connect", message
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/deny-custom":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"x-why", b"token")]})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
        return
    if path == "/subprotocol":
        chosen = scope["subprotocols"][-1] if scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": chosen,
                    "headers": [(b"x-extra", b"yes")]})
    else:
        await send({"type": "websocket.accept"})
    if path == "/scope":
        scope_copy = {k: v for k, v in scope.items() if k not in ("state",)}
        await send({"type": "websocket.send", "text": json.dumps(_jsonable(scope_copy))})
        await receive()
        return
    if path == "/server-close":
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        return
    if path == "/raise":
        raise RuntimeError("boom in websocket app")
    if path == "/bad-send":
        try:
            await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
        except Exception as exc:
            await send({"type": "websocket.send",
                        "text": f"{type(exc).__name__}: {exc}"})
        await receive()
        return
    if path == "/record":
        ident = parse_qs(scope["query_string"].decode())["id"][0]
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
        result = {"message": message}
        try:
            await send({"type": "websocket.send", "text": "too late"})
            result["send"] = "no error"
        except Exception as exc:
            result["send"] = type(exc).__name__
            result["oserror"] = isinstance(exc, OSError)
        _write(f"{ident}.json", result)
        return
    if path == "/flood":
        ident = parse_qs(scope["query_string"].decode())["id"][0]
        chunk = b"f" * 65536
        sent = 0
        try:
            while True:
                await send({"type": "websocket.send", "bytes": chunk})
                sent += 1
                if sent % 8 == 0:
                    _write(f"{ident}.json", {"sent": sent})
        except OSError:
            _write(f"{ident}.json", {"sent": sent, "stopped": True})
        return
    if path == "/cancelled-receive":
        try:
            await asyncio.wait_for(receive(), 0.05)
        except asyncio.TimeoutError:
            pass
        await _echo_next_after_a_pause(receive, send)
        return
    if path == "/cancelled-task":
        asyncio.get_running_loop().call_later(0.05, asyncio.current_task().cancel)
        try:
            await receive()
        except asyncio.CancelledError:
            pass
        await _echo_next_after_a_pause(receive, send)
        return
    if path == "/late-reader":
        n = int(parse_qs(scope["query_string"].decode())["n"][0])
        await asyncio.sleep(0.5)
        got = 0
        while got < n:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            got += 1
        await send({"type": "websocket.send", "text": str(got)})
        return
    if path == "/no-reader":
        await asyncio.sleep(3600)
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})

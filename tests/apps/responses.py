"""Response shapes chosen by the path.

/cl-short       declares content-length 10, sends 3 bytes and finishes
/cl-long        declares content-length 2, sends 5 bytes
/cl-exact       declares content-length 5 over two messages
/204            204 with no body
/headers        repeated and mixed-case response headers
/custom-status  status 299 (unknown reason phrase)
/big?mb=N       N MiB in 64 KiB messages
/big-once?mb=N&token=T  N MiB in one last message; once its send()
                returns, /sent?token=T answers "yes"
/header-shapes?shape=S  the same two headers as a list of lists, a tuple
                of tuples or a generator of pairs (S = lists, tuple, generator)
/awaitables     send()'s result used as apps use awaitables: awaited twice,
                through ensure_future, wait_for and gather
"""

import asyncio
import inspect
from urllib.parse import parse_qs

#: Tokens of /big-once requests whose one send() returned.
_SENT = set()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/cl-short":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"abc"})
        return
    if path == "/cl-long":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        try:
            await send({"type": "http.response.body", "body": b"hello"})
        except Exception:
            pass
        return
    if path == "/cl-exact":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"he", "more_body": True})
        await send({"type": "http.response.body", "body": b"llo"})
        return
    if path == "/header-shapes":
        pairs = [(b"x-a", b"1"), (b"x-b", b"2")]
        headers = {
            "lists": lambda: [list(p) for p in pairs],
            "tuple": lambda: tuple(pairs),
            "generator": lambda: (p for p in pairs),
        }[q["shape"]]()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/awaitables":
        sent = send({"type": "http.response.start", "status": 200, "headers": []})
        assert inspect.isawaitable(sent)
        assert await sent is None
        assert await sent is None
        part = {"type": "http.response.body", "more_body": True}
        assert await asyncio.ensure_future(send({**part, "body": b"a"})) is None
        assert await asyncio.wait_for(send({**part, "body": b"b"}), 5) is None
        assert await asyncio.gather(send({**part, "body": b"c"})) == [None]
        await send({"type": "http.response.body", "body": b"d"})
        return
    if path == "/204":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/headers":
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"Set-Cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            (b"X-Mixed-Case", b"Value"),
            (b"content-type", b"text/plain"),
        ]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/custom-status":
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"odd"})
        return
    if path == "/big":
        n = int(q.get("mb", "1")) * 16
        await send({"type": "http.response.start", "status": 200, "headers": []})
        block = b"b" * 65536
        for _ in range(n):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/big-once":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"b" * (int(q["mb"]) << 20)})
        _SENT.add(q["token"])
        return
    if path == "/sent":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": b"yes" if q["token"] in _SENT else b"no"})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def app_headers(scope, receive, send):
    """/te: the app sets transfer-encoding itself; /close: the app sets
    connection: close; /keep: the app sets connection: keep-alive."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/te":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"transfer-encoding", b"chunked")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
        return
    if path == "/close":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"bye"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"connection", b"keep-alive")]})
    await send({"type": "http.response.body", "body": b"kept"})

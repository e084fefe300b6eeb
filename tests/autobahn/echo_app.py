"""A plain ASGI WebSocket echo app, the testee of the Autobahn fuzzing client.

Every WebSocket connection is accepted (no subprotocol, no extra headers) and
every message is sent back as it came, text as text and bytes as bytes. Any
HTTP request gets a 404. Lifespan is acknowledged so servers that insist on it
start cleanly.
"""


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "websocket":
        await _echo(receive, send)
    elif kind == "http":
        await _not_found(receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)


async def _echo(receive, send):
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif kind == "websocket.disconnect":
            return


async def _not_found(receive, send):
    body = b"Not Found\n"
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

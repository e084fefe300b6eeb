"""A plain ASGI app (no framework) for cormorant-sandbox: hello, echo and a
WebSocket echo. Its scenarios are in plain_app.toml."""


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await websocket_echo(receive, send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/echo" and scope["method"] == "POST":
        status, reply = 200, body
    elif scope["path"] == "/":
        name = scope["query_string"].decode() or "world"
        status, reply = 200, f"hello, {name}".encode()
    else:
        status, reply = 404, b"not found"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": reply})


async def websocket_echo(receive, send):
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            reply = {"type": "websocket.send"}
            if message.get("text") is not None:
                reply["text"] = message["text"]
            else:
                reply["bytes"] = message["bytes"]
            await send(reply)
        else:
            return

"""One ASGI app per bug class, chosen by path, for the sandbox tests (one
component serves them all). Each route does exactly one wrong thing."""

import asyncio
import socket


async def start(send, status=200):
    await send({"type": "http.response.start", "status": status, "headers": []})


async def text(send, body, status=200):
    await start(send, status)
    await send({"type": "http.response.body", "body": body.encode()})


async def good(scope, receive, send):
    message = await receive()
    await text(send, f"ok {scope['method']} {len(message['body'])}")


async def body_before_start(scope, receive, send):
    await send({"type": "http.response.body", "body": b"too early"})


async def two_starts(scope, receive, send):
    await start(send)
    await start(send)


async def after_final_body(scope, receive, send):
    await text(send, "done")
    await send({"type": "http.response.body", "body": b"one more"})


async def no_response(scope, receive, send):
    await receive()


async def never_returns(scope, receive, send):
    await asyncio.Event().wait()


async def status_as_str(scope, receive, send):
    await send({"type": "http.response.start", "status": "200", "headers": []})


async def body_as_str(scope, receive, send):
    await start(send)
    await send({"type": "http.response.body", "body": "not bytes"})


async def raises(scope, receive, send):
    return 1 / 0


async def spin(scope, receive, send):
    while True:
        pass


async def hog(scope, receive, send):
    blobs = []
    while True:
        blobs.append(bytearray(16 << 20))


async def sleeps_forever(scope, receive, send):
    while True:
        await asyncio.sleep(3600)


async def network(scope, receive, send):
    port = int(scope["query_string"])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        result = "connected"
    except Exception as e:
        result = type(e).__name__
    await text(send, result)


async def read(scope, receive, send):
    try:
        with open(scope["query_string"].decode()) as f:
            result = f.read()
    except Exception as e:
        result = type(e).__name__
    await text(send, result)


async def write(scope, receive, send):
    try:
        with open(scope["query_string"].decode(), "w") as f:
            f.write("x")
        result = "written"
    except Exception as e:
        result = type(e).__name__
    await text(send, result)


async def ws_echo(scope, receive, send):
    while (message := await receive())["type"] != "websocket.disconnect":
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


async def ws_send_before_accept(scope, receive, send):
    await receive()
    await send({"type": "websocket.send", "text": "hello?"})


ROUTES = {
    "/good": good,
    "/body-before-start": body_before_start,
    "/two-starts": two_starts,
    "/after-final-body": after_final_body,
    "/no-response": no_response,
    "/never-returns": never_returns,
    "/status-as-str": status_as_str,
    "/body-as-str": body_as_str,
    "/raise": raises,
    "/spin": spin,
    "/hog": hog,
    "/sleeps-forever": sleeps_forever,
    "/network": network,
    "/read": read,
    "/write": write,
    "/ws-echo": ws_echo,
    "/ws-send-before-accept": ws_send_before_accept,
}


async def app(scope, receive, send):
    await ROUTES[scope["path"]](scope, receive, send)

"""Reports which event loop runs the application."""

import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    loop = asyncio.get_running_loop()
    name = f"{type(loop).__module__}.{type(loop).__name__}"
    await asyncio.sleep(0.001)  # the loop really runs timers
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": name.encode()})

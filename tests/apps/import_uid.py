"""Answers with the uid the module was imported as."""

import os

IMPORT_UID = os.getuid()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(IMPORT_UID).encode()})

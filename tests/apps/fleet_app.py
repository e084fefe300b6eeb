"""For the fleet test: says who served a request and for whom, as JSON.

The instance's name comes from `$FLEET_INSTANCE`; the process's PID, the
scope's `client` (the address a PROXY protocol header named), the HTTP
version the balancer spoke, and the query string the client sent (so the
client can tell its own answer from another's) come from the request.
"""

import json
import os

INSTANCE = os.environ.get("FLEET_INSTANCE", "")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({
        "instance": INSTANCE,
        "pid": os.getpid(),
        "client": scope["client"],
        "http_version": scope["http_version"],
        "query": scope["query_string"].decode("latin-1"),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})

"""Returns the request's scope as JSON (bytes decoded as latin-1)."""

import json


def _plain(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    # Drain the body so the request is complete.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    data = _plain(scope)
    # Types the JSON cannot show.
    data["_types"] = {
        "raw_path": type(scope["raw_path"]).__name__,
        "query_string": type(scope["query_string"]).__name__,
        "headers": type(scope["headers"]).__name__,
        "header_item": [type(x).__name__ for x in scope["headers"][0]] if scope["headers"] else [],
        "client": type(scope.get("client")).__name__,
        "client_port": type(scope["client"][1]).__name__ if scope.get("client") else None,
        "server_port": type(scope["server"][1]).__name__ if scope.get("server") else None,
    }
    if b"mutate" in scope["query_string"]:
        # An app may change what it was given: the next request's scope
        # must not show it.
        scope["asgi"]["version"] = "mutated"
        tls = scope.get("extensions", {}).get("tls")
        if tls is not None:
            tls["client_cert_chain"].append("mutated")
            tls["tls_version"] = 0
    body = json.dumps(data).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json")],
    })
    await send({"type": "http.response.body", "body": body})

"""Applications that fail in various ways.

/raise-before        raises before starting a response
/raise-after         starts a streamed response, sends a chunk, then raises
/no-response         returns without sending anything
/start-only          sends http.response.start and returns
/invalid/<case>      sends an invalid message, catches what send() raises,
                     and reports {"type", "message", "is_exception"} as JSON
/after-complete      completes a response, then sends once more; the outcome
                     is stored and readable at /results
/results             JSON of stored outcomes
"""

import json

RESULTS = {}


def _describe(exc):
    if exc is None:
        return {"type": None, "message": None}
    return {"type": type(exc).__name__, "message": str(exc),
            "mro": [c.__name__ for c in type(exc).__mro__]}


async def _try(send, message):
    try:
        await send(message)
    except Exception as exc:
        return exc
    return None


async def _json(send, data, status=200):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json")]}

INVALID = {
    "body-before-start": [{"type": "http.response.body", "body": b"x"}],
    "unknown-type": [{"type": "http.response.bogus"}],
    "no-type": [{"status": 200}],
    "bad-status": [{"type": "http.response.start", "status": "200"}],
    "bad-header-name": [{"type": "http.response.start", "status": 200,
                         "headers": [(b"bad header", b"x")]}],
    "bad-header-value": [{"type": "http.response.start", "status": 200,
                          "headers": [(b"x-bad", b"a\r\nb")]}],
    "three-item-header": [{"type": "http.response.start", "status": 200,
                           "headers": [(b"x-a", b"1", b"2")]}],
    "headers-not-a-list": [{"type": "http.response.start", "status": 200,
                            "headers": 5}],
    "str-header-name": [{"type": "http.response.start", "status": 200,
                         "headers": [("x-a", b"1")]}],
    "ctl-header-value": [{"type": "http.response.start", "status": 200,
                          "headers": [(b"x-bad", b"a\x01b")]}],
    "del-header-value": [{"type": "http.response.start", "status": 200,
                          "headers": [(b"x-bad", b"a\x7fb")]}],
    "str-body": [START, {"type": "http.response.body", "body": "text"}],
    "two-starts": [START, START],
}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/raise-before":
        raise RuntimeError("boom before the response")
    if path == "/raise-after":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after the response started")
    if path == "/no-response":
        return
    if path == "/start-only":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        return
    if path.startswith("/invalid/"):
        case = path[len("/invalid/"):]
        messages = INVALID[case]
        exc = None
        for m in messages:
            exc = await _try(send, m)
            if exc is not None:
                break
        report = _describe(exc)
        body = json.dumps(report).encode()
        if messages[0] is START and exc is not None:
            # The first start was accepted: finish that response.
            await send({"type": "http.response.body", "body": body})
        else:
            await _json(send, report)
        return
    if path == "/after-complete":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"complete"})
        RESULTS["after-complete"] = _describe(
            await _try(send, {"type": "http.response.body", "body": b"more"}))
        return
    if path == "/results":
        await _json(send, RESULTS)
        return
    await _json(send, {"error": "not found"}, status=404)

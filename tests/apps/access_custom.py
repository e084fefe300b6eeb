"""An app whose module configures the `cormorant.access` logger itself: its
records must go through Python logging (the filter tags each line)."""

import logging
import sys


class Tag(logging.Filter):
    def filter(self, record):
        record.msg = f"[tagged] {record.msg}"
        return True


_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
_access = logging.getLogger("cormorant.access")
_access.addHandler(_handler)
_access.addFilter(Tag())
_access.setLevel(logging.INFO)
_access.propagate = False


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

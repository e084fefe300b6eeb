"""Checked by mypy in `make lint`, never run: the keywords of `Server` and
`run` are typed (`cormorant.ServerOptions`), so type checkers and editors
know them. Each misspelt or mistyped call below carries an ignore comment;
`--warn-unused-ignores` fails the check if mypy stops flagging it."""

from pathlib import Path

import cormorant
from cormorant import Server
from cormorant.constants import Interfaces, LogLevels

# granian's keywords and enums (LiteLLM's call) and uvicorn's.
Server(
    target="main:app", address="127.0.0.1", port=8000, workers=2, interface=Interfaces.ASGI,
    websockets=True, runtime_threads=2, ssl_cert=Path("cert.pem"), ssl_key=Path("key.pem"),
    log_level=LogLevels.info,
).serve()
cormorant.run("main:app", host="127.0.0.1", port=8000, proxy_headers=True,
              forwarded_allow_ips=["10.0.0.1"], ssl_cert_reqs=2, timeout_keep_alive=5)

Server("main:app", adress="127.0.0.1")  # type: ignore[call-arg]
cormorant.run("main:app", port="8000")  # type: ignore[arg-type]
cormorant.run("main:app", lifespan=True)  # type: ignore[arg-type]
cormorant.run("main:app", ws_ping_interval="20")  # type: ignore[arg-type]

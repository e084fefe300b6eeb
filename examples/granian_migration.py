"""Moving from granian to Cormorant: change the imports, nothing else.

The function below makes the same `Granian(...)` call as the LiteLLM proxy
(`litellm --run_granian`): an import-string target, address, port,
workers, `interface=Interfaces.ASGI`, WebSockets on, granian's
`runtime_threads`, and the TLS files as `pathlib.Path`. With granian it
would import::

    from granian import Granian
    from granian.constants import Interfaces

With Cormorant only those two lines differ. `runtime_threads` tunes
granian's own runtime; Cormorant accepts it and says once in the log that
it has no effect.

    python examples/granian_migration.py examples.fastapi_app:app --port 4000 --workers 2
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Optional

from cormorant import Server as Granian
from cormorant.constants import Interfaces


def serve_like_litellm(
    target: str,
    host: str,
    port: int,
    num_workers: int,
    ssl_certfile_path: Optional[str] = None,
    ssl_keyfile_path: Optional[str] = None,
    runtime_threads: Optional[int] = None,
) -> None:
    """Builds granian's keyword arguments the way LiteLLM does and serves."""
    kwargs: Dict[str, Any] = {
        "target": target,
        "address": host,
        "port": port,
        "workers": max(1, num_workers),
        "interface": Interfaces.ASGI,
        "websockets": True,
    }
    if runtime_threads is not None:
        kwargs["runtime_threads"] = runtime_threads
    if ssl_certfile_path is not None and ssl_keyfile_path is not None:
        kwargs["ssl_cert"] = Path(ssl_certfile_path)
        kwargs["ssl_key"] = Path(ssl_keyfile_path)
    Granian(**kwargs).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="the ASGI app, module:attribute")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    parser.add_argument("--runtime-threads", type=int)
    args = parser.parse_args()
    serve_like_litellm(args.target, args.host, args.port, args.workers,
                       args.ssl_certfile, args.ssl_keyfile, args.runtime_threads)


if __name__ == "__main__":
    main()

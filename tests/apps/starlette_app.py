"""A Starlette application with a lifespan that sets state."""

import contextlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan"}


async def home(request: Request):
    return JSONResponse({"path": request.url.path, "greeting": request.state.greeting})


async def form(request: Request):
    data = await request.form()
    upload = data["file"]
    content = await upload.read()
    return JSONResponse({"field": data["field"], "filename": upload.filename,
                         "size": len(content)})


async def stream(request: Request):
    async def gen():
        for i in range(3):
            yield f"part {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain")


def _write(path: str) -> None:
    Path(path).write_text("starlette background")


async def background(request: Request):
    path = request.query_params["path"]
    return PlainTextResponse("ok", background=BackgroundTask(_write, path))


async def ws_echo(websocket: WebSocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"echo: {text}")


app = Starlette(
    routes=[
        WebSocketRoute("/ws", ws_echo),
        Route("/", home),
        Route("/form", form, methods=["POST"]),
        Route("/stream", stream),
        Route("/background", background),
    ],
    lifespan=lifespan,
)

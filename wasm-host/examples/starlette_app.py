"""A Starlette app for cormorant-sandbox: JSON, path parameters, a sync
endpoint (Starlette runs it through anyio's thread pool), a streaming
response, a file from the read-only directory, state from the lifespan and
a WebSocket with a subprotocol. Its scenarios are in starlette_app.toml."""

import asyncio
import contextlib
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

DATA_DIR = os.environ.get("SANDBOX_DATA", "/data")


async def homepage(request):
    return JSONResponse({"hello": "world", "client": request.client.host})


async def user(request):
    return PlainTextResponse(f"user {request.path_params['user_id']}")


def sync_sum(request):
    numbers = [int(n) for n in request.query_params.get("n", "").split(",") if n]
    return PlainTextResponse(str(sum(numbers)))


async def countdown(request):
    async def numbers():
        for i in range(3, 0, -1):
            yield f"{i}\n"
            await asyncio.sleep(1)
        yield "liftoff\n"

    return StreamingResponse(numbers(), media_type="text/plain")


async def read_file(request):
    with open(os.path.join(DATA_DIR, request.path_params["name"])) as f:
        return PlainTextResponse(f.read())


async def greeting(request):
    return PlainTextResponse(request.state.greeting)


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "set at startup"}


async def chat(websocket):
    await websocket.accept(subprotocol="chat")
    async for text in websocket.iter_text():
        if text == "bye":
            await websocket.close(code=1000)
            return
        await websocket.send_text(text.upper())


app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/users/{user_id:int}", user),
        Route("/sum", sync_sum),
        Route("/countdown", countdown),
        Route("/files/{name}", read_file),
        Route("/greeting", greeting),
        WebSocketRoute("/chat", chat),
    ],
    lifespan=lifespan,
)

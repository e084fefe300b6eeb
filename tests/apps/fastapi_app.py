"""A FastAPI application."""

import asyncio
from pathlib import Path

from fastapi import BackgroundTasks, FastAPI, File, Form, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.get("/json")
async def json_endpoint():
    return {"hello": "world", "numbers": [1, 2, 3]}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}


@app.post("/echo-json")
async def echo_json(payload: dict):
    return {"received": payload}


@app.post("/upload")
async def upload(name: str = Form(...), file: UploadFile = File(...)):
    data = await file.read()
    return {"name": name, "filename": file.filename, "size": len(data),
            "content_type": file.content_type, "head": data[:16].decode("latin-1")}


@app.get("/stream")
async def stream(n: int = 5):
    async def gen():
        for i in range(n):
            yield f"line {i}\n"
            await asyncio.sleep(0)

    return StreamingResponse(gen(), media_type="text/plain")


def _write_file(path: str, content: str) -> None:
    Path(path).write_text(content)


@app.post("/background")
async def background(path: str, tasks: BackgroundTasks):
    tasks.add_task(_write_file, path, "written in the background")
    return {"scheduled": True}


@app.websocket("/ws/items")
async def ws_items(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"n": data["n"], "double": data["n"] * 2})
    except WebSocketDisconnect:
        pass

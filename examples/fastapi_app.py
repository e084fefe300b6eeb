"""A small FastAPI app: `cormorant examples.fastapi_app:app`."""

from typing import Optional

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI(title="Cormorant example")


@app.get("/")
async def index():
    return {"message": "Hello from Cormorant"}


@app.get("/items/{item_id}")
async def item(item_id: int, q: Optional[str] = None):
    return {"item_id": item_id, "q": q}


@app.get("/stream")
async def stream():
    async def numbers():
        for i in range(10):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")

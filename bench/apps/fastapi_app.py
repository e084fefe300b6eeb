"""A FastAPI JSON endpoint, the most common production shape."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def json_endpoint():
    return {"message": "Hello, world!", "items": list(range(10))}

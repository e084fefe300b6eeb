"""An app whose lifespan startup fails: the sandbox must not serve it."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    raise AssertionError("served without a successful startup")

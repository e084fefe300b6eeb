"""Real frameworks on Cormorant: FastAPI and Starlette."""

import httpx
import pytest

from conftest import wait_text


@pytest.fixture(scope="module")
def fastapi_server(module_server_factory):
    return module_server_factory.start("apps.fastapi_app:app")


@pytest.fixture(scope="module")
def starlette_server(module_server_factory):
    return module_server_factory.start("apps.starlette_app:app")


def test_fastapi_json(fastapi_server):
    r = httpx.get(fastapi_server.url("/json"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"hello": "world", "numbers": [1, 2, 3]}


def test_fastapi_path_and_query_params(fastapi_server):
    r = httpx.get(fastapi_server.url("/items/42?q=caf%C3%A9"))
    assert r.json() == {"item_id": 42, "q": "café"}


def test_fastapi_validation_error(fastapi_server):
    r = httpx.get(fastapi_server.url("/items/not-a-number"))
    assert r.status_code == 422


def test_fastapi_json_body(fastapi_server):
    r = httpx.post(fastapi_server.url("/echo-json"), json={"a": [1, 2], "b": None})
    assert r.json() == {"received": {"a": [1, 2], "b": None}}


def test_fastapi_404(fastapi_server):
    assert httpx.get(fastapi_server.url("/missing")).status_code == 404


def test_fastapi_form_upload(fastapi_server):
    content = b"PNG-ish header " + bytes(range(256)) * 400
    r = httpx.post(
        fastapi_server.url("/upload"),
        data={"name": "avatar"},
        files={"file": ("picture.bin", content, "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "avatar",
        "filename": "picture.bin",
        "size": len(content),
        "content_type": "application/octet-stream",
        "head": content[:16].decode("latin-1"),
    }


def test_fastapi_large_form_upload(fastapi_server):
    content = b"z" * (3 * 1024 * 1024)
    r = httpx.post(fastapi_server.url("/upload"), data={"name": "big"},
                   files={"file": ("big.txt", content, "text/plain")}, timeout=30)
    assert r.json()["size"] == len(content)


def test_fastapi_streaming_response(fastapi_server):
    with httpx.stream("GET", fastapi_server.url("/stream?n=20")) as r:
        assert r.headers["transfer-encoding"] == "chunked"
        text = "".join(r.iter_text())
    assert text == "".join(f"line {i}\n" for i in range(20))


def test_fastapi_background_task(fastapi_server, tmp_path):
    target = tmp_path / "bg.txt"
    r = httpx.post(fastapi_server.url("/background"), params={"path": str(target)})
    assert r.json() == {"scheduled": True}
    assert wait_text(target) == "written in the background"


def test_fastapi_keep_alive_many_requests(fastapi_server):
    with httpx.Client(base_url=fastapi_server.base_url) as client:
        for i in range(20):
            assert client.get(f"/items/{i}").json()["item_id"] == i


def test_starlette_lifespan_state(starlette_server):
    r = httpx.get(starlette_server.url("/"))
    assert r.json() == {"path": "/", "greeting": "hello from lifespan"}
    assert "Application startup complete" in starlette_server.output()


def test_starlette_form(starlette_server):
    r = httpx.post(starlette_server.url("/form"), data={"field": "value"},
                   files={"file": ("a.txt", b"hello starlette", "text/plain")})
    assert r.json() == {"field": "value", "filename": "a.txt", "size": 15}


def test_starlette_streaming(starlette_server):
    r = httpx.get(starlette_server.url("/stream"))
    assert r.text == "part 0\npart 1\npart 2\n"
    assert r.headers["transfer-encoding"] == "chunked"


def test_starlette_background(starlette_server, tmp_path):
    target = tmp_path / "s.txt"
    r = httpx.get(starlette_server.url("/background"), params={"path": str(target)})
    assert r.text == "ok"
    assert wait_text(target) == "starlette background"


def test_starlette_405(starlette_server):
    assert httpx.get(starlette_server.url("/form")).status_code == 405


def test_no_errors_logged(fastapi_server, starlette_server):
    for s in (fastapi_server, starlette_server):
        out = s.output()
        assert "Exception in ASGI application" not in out
        assert "Traceback" not in out

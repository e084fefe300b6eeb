"""Static files served by the I/O thread (--static-path-route /
--static-path-mount / --static-path-expires): content and type, HEAD,
conditional requests, ranges, precompressed siblings, traversal attempts,
HTTP/2, and that other paths still reach the application.
"""

from __future__ import annotations

import email.utils
import gzip
import os

import httpx
import pytest

import cormorant

from rawhttp import RawConnection, fetch, request_bytes

SECRET = b"TOP-SECRET-BYTES"
BIG = bytes(range(256)) * 1024  # 256 KiB
GZ = gzip.compress(b"from the .gz sibling")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    (base / "secret").write_bytes(SECRET)
    pub = base / "public"
    (pub / "sub" / "dir").mkdir(parents=True)
    (pub / "hello.txt").write_bytes(b"hello static\n")
    (pub / "style.css").write_bytes(b"body { color: red }")
    (pub / "sub" / "page.html").write_bytes(b"<p>hi</p>")
    (pub / "big.bin").write_bytes(BIG)
    (pub / "app.js").write_bytes(b"console.log('plain')")
    (pub / "app.js.gz").write_bytes(GZ)
    (pub / "app.js.br").write_bytes(b"BROTLI-BYTES")
    (pub / "only.css").write_bytes(b"plain-only")
    (pub / "only.css.gz").write_bytes(b"gz-only")
    (pub / "empty.txt").write_bytes(b"")
    os.symlink(base / "secret", pub / "link-out")
    os.symlink(pub / "hello.txt", pub / "link-in.txt")
    os.symlink(base, pub / "dir-out")
    return base


@pytest.fixture(scope="module")
def server(module_server_factory, root):
    return module_server_factory.start(
        "apps.scope_echo:app",
        "--static-path-route", "/static",
        "--static-path-mount", str(root / "public"),
        "--static-path-route", "/assets/",
        "--static-path-mount", str(root / "public" / "sub"),
        "--static-path-expires", "3600",
    )


def raw(server, target, method="GET", headers=()):
    return fetch(server.host, server.port, request_bytes(method, target, list(headers)))


def test_content_and_type(server):
    r = httpx.get(server.url("/static/hello.txt"))
    assert r.status_code == 200
    assert r.content == b"hello static\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "13"
    assert r.headers["cache-control"] == "max-age=3600"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"].startswith('"')
    assert r.headers["server"] == "cormorant"
    assert "date" in r.headers
    r = httpx.get(server.url("/static/style.css?v=3"))
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    r = httpx.get(server.url("/static/sub/page.html"))
    assert (r.status_code, r.content) == (200, b"<p>hi</p>")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    # A second route, with a trailing slash in its flag.
    r = httpx.get(server.url("/assets/page.html"))
    assert (r.status_code, r.content) == (200, b"<p>hi</p>")
    # A symlink inside the mount pointing inside it.
    assert httpx.get(server.url("/static/link-in.txt")).content == b"hello static\n"
    r = httpx.get(server.url("/static/empty.txt"))
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "0")


def test_large_file(server):
    r = httpx.get(server.url("/static/big.bin"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == BIG


def test_head(server):
    r = httpx.head(server.url("/static/hello.txt"))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "13"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_other_methods_405(server):
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = httpx.request(method, server.url("/static/hello.txt"), content=b"x")
        assert r.status_code == 405, method
        assert r.headers["allow"] == "GET, HEAD"


def test_missing_and_directories_404(server):
    for path in ("/static/nope.txt", "/static/sub", "/static/sub/", "/static", "/static/",
                 "/static/sub/dir", "/assets"):
        r = httpx.get(server.url(path))
        assert r.status_code == 404, path


def test_etag_304(server):
    r = httpx.get(server.url("/static/hello.txt"))
    etag = r.headers["etag"]
    r2 = httpx.get(server.url("/static/hello.txt"), headers={"if-none-match": etag})
    assert r2.status_code == 304
    assert r2.content == b""
    assert r2.headers["etag"] == etag
    r3 = httpx.get(server.url("/static/hello.txt"), headers={"if-none-match": f'"x", W/{etag}'})
    assert r3.status_code == 304
    r4 = httpx.get(server.url("/static/hello.txt"), headers={"if-none-match": '"other"'})
    assert r4.status_code == 200


def test_last_modified_304(server, root):
    r = httpx.get(server.url("/static/hello.txt"))
    lm = r.headers["last-modified"]
    mtime = (root / "public" / "hello.txt").stat().st_mtime
    assert email.utils.parsedate_to_datetime(lm).timestamp() == int(mtime)
    r2 = httpx.get(server.url("/static/hello.txt"), headers={"if-modified-since": lm})
    assert r2.status_code == 304
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    r3 = httpx.get(server.url("/static/hello.txt"), headers={"if-modified-since": old})
    assert r3.status_code == 200


def test_range(server):
    r = httpx.get(server.url("/static/big.bin"), headers={"range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.content == BIG[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(BIG)}"
    assert r.headers["content-length"] == "1000"
    r = httpx.get(server.url("/static/big.bin"), headers={"range": "bytes=-100"})
    assert (r.status_code, r.content) == (206, BIG[-100:])
    r = httpx.get(server.url("/static/big.bin"), headers={"range": "bytes=200000-"})
    assert (r.status_code, r.content) == (206, BIG[200000:])
    # A stale If-Range gets the whole file.
    r = httpx.get(server.url("/static/big.bin"),
                  headers={"range": "bytes=0-9", "if-range": '"stale"'})
    assert (r.status_code, len(r.content)) == (200, len(BIG))
    # Several ranges: the whole file.
    r = httpx.get(server.url("/static/hello.txt"), headers={"range": "bytes=0-1,3-4"})
    assert (r.status_code, r.content) == (200, b"hello static\n")


def test_range_unsatisfiable(server):
    r = httpx.get(server.url("/static/hello.txt"), headers={"range": "bytes=100-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */13"
    r = httpx.get(server.url("/static/empty.txt"), headers={"range": "bytes=0-"})
    assert r.status_code == 416


def test_range_over_http11_keeps_connection(server):
    # sendfile with an offset, then the next request on the same connection.
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/static/big.bin", [("Range", "bytes=5000-70000")]))
        r = c.read_response()
        assert r.status == 206
        assert r.body == BIG[5000:70001]
        c.send(request_bytes("HEAD", "/static/hello.txt"))
        r = c.read_response(head_request=True)
        assert (r.status, r.header("content-length")) == (200, "13")
        c.send(request_bytes("GET", "/static/hello.txt", [("If-None-Match", "*")]))
        assert c.read_response().status == 304
        c.send(request_bytes("GET", "/app-path"))
        r = c.read_response()
        assert r.status == 200 and b'"path": "/app-path"' in r.body


@pytest.mark.parametrize(
    "accept, body, encoding",
    [
        ("gzip, deflate, br", b"BROTLI-BYTES", "br"),
        ("gzip", GZ, "gzip"),
        ("br;q=0, gzip", GZ, "gzip"),
        ("identity", b"console.log('plain')", None),
        ("*", b"BROTLI-BYTES", "br"),
    ],
)
def test_precompressed(server, accept, body, encoding):
    r = raw(server, "/static/app.js", headers=[("Accept-Encoding", accept)])
    assert r.status == 200
    assert r.body == body
    assert r.header("content-encoding") == encoding
    assert r.header("vary") == "accept-encoding"
    assert r.header("content-type") == "text/javascript; charset=utf-8"


def test_precompressed_etags_differ(server):
    plain = raw(server, "/static/app.js").header("etag")
    gz = raw(server, "/static/app.js", headers=[("Accept-Encoding", "gzip")]).header("etag")
    assert plain != gz
    r = raw(server, "/static/app.js",
            headers=[("Accept-Encoding", "gzip"), ("If-None-Match", gz)])
    assert r.status == 304
    assert r.header("vary") == "accept-encoding"
    r = raw(server, "/static/only.css", headers=[("Accept-Encoding", "br, gzip")])
    assert (r.body, r.header("content-encoding")) == (b"gz-only", "gzip")
    # No sibling: no Vary.
    assert raw(server, "/static/hello.txt", headers=[("Accept-Encoding", "gzip")]).header(
        "vary") is None


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret",
        "/static/%2e%2e/secret",
        "/static/%2E%2E/secret",
        "/static/..%2fsecret",
        "/static/..%2Fsecret",
        "/static/a/..%5c..%5csecret",
        "/static/..\\secret",
        "/static/sub/../../secret",
        "/static/.%2e/secret",
        "/static/link-out",
        "/static/dir-out/secret",
        "/static/hello.txt%00.png",
        "/static//../secret",
    ],
)
def test_traversal_refused(server, target):
    r = raw(server, target)
    assert r.status in (400, 404), (target, r.status)
    assert SECRET not in r.body
    assert SECRET not in r.raw_head


def test_non_static_paths_reach_the_app(server):
    for path in ("/", "/staticfoo", "/other/static/hello.txt", "/assetsx"):
        r = httpx.get(server.url(path))
        assert r.status_code == 200, path
        assert r.json()["path"] == path


def test_http2(server):
    with httpx.Client(http1=False, http2=True) as c:
        r = c.get(server.url("/static/big.bin"))
        assert r.http_version == "HTTP/2"
        assert (r.status_code, r.content) == (200, BIG)
        assert r.headers["content-length"] == str(len(BIG))
        etag = r.headers["etag"]
        assert c.get(server.url("/static/big.bin"), headers={"if-none-match": etag}).status_code == 304
        r = c.get(server.url("/static/big.bin"), headers={"range": "bytes=10-19"})
        assert (r.status_code, r.content) == (206, BIG[10:20])
        assert r.headers["content-range"] == f"bytes 10-19/{len(BIG)}"
        r = c.head(server.url("/static/hello.txt"))
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "13")
        r = c.get(server.url("/static/app.js"), headers={"accept-encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["vary"] == "accept-encoding"
        assert r.content == b"from the .gz sibling"
        r = c.post(server.url("/static/hello.txt"), content=b"x")
        assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")
        assert c.get(server.url("/static/nope")).status_code == 404
        assert c.get(server.url("/static/%2e%2e/secret")).status_code == 404
        assert c.get(server.url("/static/link-out")).status_code == 404
        r = c.get(server.url("/elsewhere"))
        assert r.json()["path"] == "/elsewhere"


def test_default_route_and_no_cache_control(server_factory, root):
    s = server_factory.start(
        "apps.scope_echo:app",
        "--static-path-mount", str(root / "public"),
        "--static-path-expires", "0",
    )
    r = httpx.get(s.url("/static/hello.txt"))
    assert r.status_code == 200
    assert "cache-control" not in r.headers


def test_bad_mount_fails_at_startup(server_factory, tmp_path):
    proc, log = server_factory.spawn(
        ["-m", "cormorant", "apps.scope_echo:app", "--port", "0",
         "--static-path-route", "/s", "--static-path-mount", str(tmp_path / "missing")]
    )
    assert proc.wait(timeout=10) != 0
    assert "missing" in log.read_text()


def test_python_api_names(tmp_path):
    cfg = cormorant.Server(
        "m:app", static_path_route="/s", static_path_mount=tmp_path, static_path_expires=10
    ).config
    assert cfg["static_path_route"] == ["/s"]
    assert cfg["static_path_mount"] == [str(tmp_path)]
    assert cfg["static_path_expires"] == 10

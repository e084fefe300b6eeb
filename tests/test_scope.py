"""Every field of the HTTP connection scope."""

import json

import httpx
import pytest

from rawhttp import RawConnection, fetch, request_bytes


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory.start("apps.scope_echo:app")


@pytest.fixture(scope="module")
def rooted(module_server_factory):
    return module_server_factory.start("apps.scope_echo:app", "--root-path", "/api/v1")


def get_scope(server, target="/", method="GET", headers=None, body=b"", version="HTTP/1.1"):
    resp = fetch(
        server.host, server.port,
        request_bytes(method, target, headers=headers, body=body, version=version),
    )
    assert resp.status == 200, resp
    return json.loads(resp.body)


def test_type_and_asgi_versions(server):
    scope = get_scope(server)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}


def test_http_version_11(server):
    r = httpx.get(server.url("/"))
    assert r.json()["http_version"] == "1.1"


def test_http_version_10(server):
    scope = get_scope(server, version="HTTP/1.0")
    assert scope["http_version"] == "1.0"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
def test_method(server, method):
    scope = get_scope(server, method=method, body=b"x" if method in ("POST", "PUT") else b"")
    assert scope["method"] == method


def test_scheme(server):
    assert get_scope(server)["scheme"] == "http"


def test_path_is_percent_decoded_and_raw_path_is_not(server):
    scope = get_scope(server, "/caf%C3%A9/a%20b/%2F?x=1")
    assert scope["path"] == "/café/a b//"
    assert scope["raw_path"] == "/caf%C3%A9/a%20b/%2F"
    assert scope["_types"]["raw_path"] == "bytes"


def test_plain_path(server):
    scope = get_scope(server, "/hello/world")
    assert scope["path"] == "/hello/world"
    assert scope["raw_path"] == "/hello/world"
    assert scope["query_string"] == ""


def test_query_string_is_raw_bytes(server):
    scope = get_scope(server, "/q?a=1&b=%20x+y&c&d=%C3%A9")
    assert scope["query_string"] == "a=1&b=%20x+y&c&d=%C3%A9"
    assert scope["_types"]["query_string"] == "bytes"
    assert scope["path"] == "/q"


def test_root_path_default_empty(server):
    assert get_scope(server, "/x")["root_path"] == ""


def test_root_path_prefixes_path(rooted):
    scope = get_scope(rooted, "/items/a%20b?z=1")
    assert scope["root_path"] == "/api/v1"
    assert scope["path"] == "/api/v1/items/a b"
    assert scope["raw_path"] == "/api/v1/items/a%20b"
    assert scope["query_string"] == "z=1"


def test_headers_lowercase_order_and_duplicates(server):
    headers = [
        ("X-First", "1"),
        ("Accept", "text/plain"),
        ("X-Dup", "a"),
        ("X-Other", "o"),
        ("X-DUP", "b"),
        ("Cookie", "k=v"),
    ]
    scope = get_scope(server, headers=headers)
    got = scope["headers"]
    assert got[0] == ["host", "localhost"]
    assert got[1:] == [
        ["x-first", "1"],
        ["accept", "text/plain"],
        ["x-dup", "a"],
        ["x-other", "o"],
        ["x-dup", "b"],
        ["cookie", "k=v"],
    ]
    assert scope["_types"]["header_item"] == ["bytes", "bytes"]


def test_header_values_keep_case_and_latin1(server):
    raw = (b"GET / HTTP/1.1\r\nHost: h\r\nX-Mixed: AbC dEf\r\n"
           b"X-Latin: caf\xe9\r\n\r\n")
    resp = fetch(server.host, server.port, raw)
    scope = json.loads(resp.body)
    assert ["x-mixed", "AbC dEf"] in scope["headers"]
    assert ["x-latin", "caf\xe9"] in scope["headers"]


def test_client_and_server_addresses(server):
    with RawConnection(server.host, server.port) as c:
        c.send(request_bytes("GET", "/"))
        resp = c.read_response()
        local_port = c.sock.getsockname()[1]
    scope = json.loads(resp.body)
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["_types"]["client_port"] == "int"
    assert scope["_types"]["server_port"] == "int"


def test_no_state_without_lifespan_state(server):
    # The scope-echo app has no lifespan handler: no state is promised, but
    # if present it must be a dict.
    scope = get_scope(server)
    assert scope.get("state", {}) == {}


def test_extensions_is_a_dict(server):
    scope = get_scope(server)
    assert isinstance(scope["extensions"], dict)


def test_body_does_not_change_scope(server):
    scope = get_scope(server, "/p", method="POST", body=b"hello")
    assert ["content-length", "5"] in scope["headers"]
    assert scope["method"] == "POST"

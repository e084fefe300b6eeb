"""Malformed or oversized requests get the right error status, and the
connection is closed afterwards."""

import pytest

from rawhttp import RawConnection, chunked

H = b"Host: localhost\r\n"


@pytest.fixture(scope="module")
def echo(module_server_factory):
    return module_server_factory.start("apps.body_echo:app")


@pytest.fixture(scope="module")
def limited(module_server_factory):
    return module_server_factory.start("apps.body_echo:app", "--limit-request-body", "1000")


def error_response(server, data, split=False):
    with RawConnection(server.host, server.port) as c:
        if split:
            for i in range(0, len(data), 7):
                c.send(data[i:i + 7])
        else:
            c.send(data)
        resp = c.read_response()
        closed = c.wait_closed(3)
    return resp, closed


BAD_REQUESTS = {
    "bad_request_line": b"GARBAGE\r\n\r\n",
    "request_line_two_spaces": b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
    "bad_method_token": b"G(T / HTTP/1.1\r\n" + H + b"\r\n",
    "bad_version": b"GET / HTTX/1.1\r\n" + H + b"\r\n",
    "cl_and_te": b"POST / HTTP/1.1\r\n" + H
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate_cl": b"POST / HTTP/1.1\r\n" + H
    + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "conflicting_cl": b"POST / HTTP/1.1\r\n" + H
    + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl_list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello",
    "cl_not_a_number": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n",
    "cl_negative": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: localhost\n\n",
    "bare_lf_in_headers": b"GET / HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n  b\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n",
    "invalid_header_name": b"GET / HTTP/1.1\r\n" + H + b"Bad Header: x\r\n\r\n",
    "invalid_header_name_paren": b"GET / HTTP/1.1\r\n" + H + b"X(A): x\r\n\r\n",
    "nul_in_header": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "cr_in_header": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n",
    "missing_host": b"GET / HTTP/1.1\r\n\r\n",
    "double_host": b"GET / HTTP/1.1\r\n" + H + H + b"\r\n",
    "te_chunked_not_last": b"POST / HTTP/1.1\r\n" + H
    + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te_in_http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_400(echo, case):
    resp, closed = error_response(echo, BAD_REQUESTS[case])
    assert resp.status == 400, (case, resp)
    assert closed, case


@pytest.mark.parametrize("case", ["bare_lf", "obs_fold", "cl_and_te", "nul_in_header"])
def test_400_when_split_in_pieces(echo, case):
    resp, closed = error_response(echo, BAD_REQUESTS[case], split=True)
    assert resp.status == 400
    assert closed


BAD_CHUNKED = {
    "chunk_size_not_hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_empty": b"\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "chunk_size_negative": b"-5\r\nhello\r\n0\r\n\r\n",
    "chunk_missing_crlf": b"5\r\nhelloXX0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD_CHUNKED))
def test_400_invalid_chunked_body(echo, case):
    data = (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
            + BAD_CHUNKED[case])
    resp, closed = error_response(echo, data)
    assert resp.status == 400, (case, resp)
    assert closed


def test_good_request_after_bad_is_not_served_on_same_connection(echo):
    data = b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n" + b"GET / HTTP/1.1\r\n" + H + b"\r\n"
    with RawConnection(echo.host, echo.port) as c:
        c.send(data)
        raw = c.read_until_close()
    assert raw.startswith(b"HTTP/1.1 400")
    assert raw.count(b"HTTP/1.1 ") == 1


def test_pipelined_good_then_bad(echo):
    data = (b"GET / HTTP/1.1\r\n" + H + b"\r\n"
            + b"GET / HTTP/1.1\r\n" + H + b"Bad Header: x\r\n\r\n")
    with RawConnection(echo.host, echo.port) as c:
        c.send(data)
        first = c.read_response()
        second = c.read_response()
        assert c.wait_closed(3)
    assert first.status == 200
    assert second.status == 400


def test_414_long_request_line(echo):
    data = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n"
    resp, closed = error_response(echo, data)
    assert resp.status == 414
    assert closed


def test_431_too_many_headers(echo):
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    data = b"GET / HTTP/1.1\r\n" + H + headers + b"\r\n"
    resp, closed = error_response(echo, data)
    assert resp.status == 431
    assert closed


def test_431_header_too_large(echo):
    data = b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * (70 * 1024) + b"\r\n\r\n"
    resp, closed = error_response(echo, data)
    assert resp.status == 431
    assert closed


def test_413_content_length_over_limit(limited):
    data = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2000\r\n\r\n" + b"x" * 2000
    resp, closed = error_response(limited, data)
    assert resp.status == 413
    assert closed


def test_413_chunked_over_limit(limited):
    data = (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
            + chunked(b"x" * 600, b"y" * 600))
    with RawConnection(limited.host, limited.port) as c:
        c.send(data)
        raw = c.read_until_close()
    # Either the server rejects before the app responds (413), or the app's
    # receive() sees the failure; in every case the body is not echoed and
    # the connection closes.
    assert raw.startswith(b"HTTP/1.1 413"), raw[:200]


def test_body_under_limit_is_fine(limited):
    data = b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1000\r\n\r\n" + b"x" * 1000
    with RawConnection(limited.host, limited.port) as c:
        c.send(data)
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"x" * 1000


@pytest.mark.parametrize("te", [b"gzip", b"identity", b"gzip, chunked"])
def test_501_unknown_transfer_encoding(echo, te):
    data = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: " + te + b"\r\n\r\n0\r\n\r\n"
    resp, closed = error_response(echo, data)
    assert resp.status == 501, resp
    assert closed


def test_505_unsupported_version(echo):
    data = b"GET / HTTP/2.0\r\n" + H + b"\r\n"
    resp, closed = error_response(echo, data)
    assert resp.status == 505
    assert closed


def test_error_responses_have_length_and_close(echo):
    resp, _ = error_response(echo, BAD_REQUESTS["bad_request_line"])
    assert resp.header("content-length") == str(len(resp.body))
    assert (resp.header("connection") or "").lower() == "close"

"""Plain WSGI workloads: the same app for every server under test."""

HELLO = b"Hello, world!"
TEN_K = b"x" * 10 * 1024


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/10k":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10240")])
        return [TEN_K]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]

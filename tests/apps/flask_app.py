"""A Flask application for the WSGI framework tests."""

import hashlib

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.get("/items/<int:item_id>")
def item(item_id):
    return jsonify(id=item_id, q=request.args.get("q"))


@app.post("/json")
def echo_json():
    return jsonify(received=request.get_json(), method=request.method)


@app.post("/upload")
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(name=f.filename, field=request.form.get("field"), size=len(data),
                   sha256=hashlib.sha256(data).hexdigest())


@app.post("/stream-upload")
def stream_upload():
    h, n = hashlib.sha256(), 0
    while True:
        piece = request.stream.read(65536)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    return jsonify(size=n, sha256=h.hexdigest())


@app.get("/download")
def download():
    mb = int(request.args.get("mb", "1"))

    def pieces():
        for i in range(mb * 16):
            yield bytes([i % 256]) * 65536

    return Response(stream_with_context(pieces()), mimetype="application/octet-stream")


@app.get("/error")
def error():
    raise RuntimeError("flask view failed")


@app.get("/stream-error")
def stream_error():
    def pieces():
        yield b"partial "
        raise RuntimeError("flask stream failed")

    return Response(pieces(), mimetype="text/plain")

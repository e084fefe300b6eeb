"""A Flask JSON endpoint, as a small production service has."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/json")
def json_view():
    return jsonify(message="Hello, world!", items=[1, 2, 3], query=request.args.get("q"))

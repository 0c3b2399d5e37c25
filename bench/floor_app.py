"""The web stack's own cost, for the "× floor" figure: Flask on waitress (the gateway's server and
thread count) answering the benchmark's `POST /predict {"url": ...}` by parsing the JSON body and
returning a small JSON object, and nothing else — no fetch, no decode, no gRPC."""

from __future__ import annotations

from flask import Flask, request

app = Flask("web-floor")


@app.post("/predict")
def predict():
    body = request.get_json(force=True)
    return {"url": body["url"], "status": "ok"}

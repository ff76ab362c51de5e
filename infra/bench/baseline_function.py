"""Baseline functions, served exactly as the benchmarks serve `api` (functions-framework's
production server, same workers and threads), so the ratios isolate what the product adds.

- `hello`: what any Firestore-backed HTTP function costs before doing anything. It imports
  google-cloud-firestore (as every function of this kind must) and answers a small JSON body.
- `read_one`: the same plus the one thing strict validation cannot skip, a bare
  `DocumentReference.get()` of one document (`BENCH_DOCUMENT`, a path) per request: where the
  api's throughput sits between the two shows how much is the read and how much is our code.
"""

from __future__ import annotations

import json
import os
import threading

import flask
import functions_framework
from google.cloud import firestore

BODY = '{"ok": true}'
_lock = threading.Lock()
_client: firestore.Client | None = None


@functions_framework.http
def hello(request: flask.Request) -> flask.Response:
    return flask.Response(BODY, mimetype="application/json")


def _document() -> firestore.DocumentReference:
    global _client
    with _lock:
        if _client is None:
            _client = firestore.Client()
    return _client.document(os.environ["BENCH_DOCUMENT"])


@functions_framework.http
def read_one(request: flask.Request) -> flask.Response:
    snapshot = _document().get()
    return flask.Response(json.dumps({"exists": snapshot.exists}), mimetype="application/json")

"""The two guards for other teams' functions, side by side in the cost table: what one validated
call costs through the Python `require_session` (functions/mydevices/http/require_session.py) and through
@mydevices/server's `requireSession` (clients/node), on the same live session.

The Python guard runs in this process, behind a Flask app of its own, and is counted where the api
is (counting.py, one scope per call). The Node guard runs in a Node process
(clients/node/test/cost.mjs, on the built package) against the same Firestore emulator, and counts
there the same way: at the generated gapic client of @google-cloud/firestore that firebase-admin
uses. Each guard is called `calls` times, each call counted on its own, so a claim such as "one
read and no write per validated call" holds for every call or fails. Each is also timed against a
bare get of the same document by the same client, interleaved, in the same run: the ratio says
what the guard adds to the read it cannot avoid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import flask
from google.cloud import firestore

from infra.bench import stats
from infra.bench.counting import Counter
from infra.local.stack import REPO_ROOT

PYTHON_GUARD = "require_session (Python guard): a live session, per call"
NODE_GUARD = "requireSession (Node guard, @mydevices/server): a live session, per call"
NODE_PACKAGE = REPO_ROOT / "clients" / "node"
NODE_COST = "test/cost.mjs"


def python_guard() -> Callable[[dict[str, str]], int]:
    """`require_session` around a function of another team, in this process: the status of a GET."""
    from mydevices.http.require_session import require_session

    @require_session
    def orders(request: flask.Request, caller: Any) -> Any:
        return {"uid": caller.uid, "sessionId": caller.sid}

    app = flask.Flask("guarded")
    app.add_url_rule("/orders", "orders", lambda: orders(flask.request))
    client = app.test_client()
    return lambda headers: client.get("/orders", headers=headers).status_code


def count_python(counter: Counter, headers: dict[str, str], document: str, project: str, calls: int,
                 iterations: int, warmup: int) -> dict[str, Any]:
    call = python_guard()
    per_call = []
    for number in range(calls):
        label = f"{PYTHON_GUARD}|call {number}"
        with counter.scope(label):
            status = call(headers)
        per_call.append({**counter.snapshot()[label], "status": status})
    reference = firestore.Client(project=project).document(document)

    def guarded() -> None:
        if call(headers) != 200:
            raise RuntimeError("the Python guard refused the live session while timed")

    with counter.scope(f"{PYTHON_GUARD}|timed"):  # counted apart, not in `unattributed`
        samples = stats.interleaved({"guard": guarded, "bareGet": reference.get}, iterations, warmup)
    return {"perCall": per_call, "timing": _timing(samples["guard"], samples["bareGet"])}


def _timing(guard: list[float], bare: list[float]) -> dict[str, Any]:
    mine, floor = stats.summary(guard), stats.summary(bare)
    return {"guard": mine, "bareGet": floor, "ratio": stats.ratio(mine["medianMs"], floor["medianMs"])}


def build_node_guard() -> None:
    """The built package, as its tests use it (tsc: about 2 s)."""
    if not (NODE_PACKAGE / "node_modules" / "firebase-admin").exists():
        raise RuntimeError("clients/node/node_modules is missing: infra/local/bootstrap --js-packages installs it")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=NODE_PACKAGE, check=True, timeout=120,
                   capture_output=True)


def count_node(headers: dict[str, str], document: str, calls: int, iterations: int, warmup: int) -> dict[str, Any]:
    """clients/node/test/cost.mjs, with this process's environment (the stack's): what it printed."""
    job = {"headers": headers, "document": document, "calls": calls, "iterations": iterations, "warmup": warmup}
    done = subprocess.run([shutil.which("node") or "node", NODE_COST], cwd=NODE_PACKAGE, env=dict(os.environ),
                          input=json.dumps(job), capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{NODE_COST} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result

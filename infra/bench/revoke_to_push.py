"""Revoke to push: from `DELETE /v1/sessions/{id}` returning to the force_logout reaching FCM.

The measurement itself is infra/local/measure_push_latency.py (the whole pipeline as deployed:
the api, the Firestore trigger and the Pub/Sub push function under functions-framework, the
emulators' own event delivery, the FCM stand-in process); this runs it on the benchmark's
stack and stops the functions it started.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

from infra.bench import stats
from infra.local import measure_push_latency
from infra.local.stack import Stack


def revoke_to_push(stack: Stack, runs: int) -> dict[str, Any]:
    before = set(map(id, stack.functions))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints each run; the table says it all
            samples = measure_push_latency.measure(stack, runs)
    finally:
        for server in stack.functions:
            if id(server) not in before:
                server.stop()
    result = stats.summary(samples)
    result["worstMs"] = max(samples) * 1000
    result["samplesMs"] = [round(sample * 1000, 1) for sample in samples]
    return result

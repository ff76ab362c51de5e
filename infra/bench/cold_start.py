"""Cold start: from launching the function's process to its first answered request.

Each run launches the `functions-framework` CLI (production server, as in http_load.py) on a
free port and polls it every few milliseconds until the first answer, then stops it. Measured:
- `api` answering `GET /v1/sessions/current` for a valid session: the first call a signed-in
  app makes, so it includes the first use of the Firestore client and the keyring;
- `api` answering `GET /.well-known/jwks.json` (no Firestore): what the imports alone cost;
- the baseline (baseline_function.py), which only imports google-cloud-firestore.
One unmeasured launch of each comes first, so all runs find the same warm bytecode and page
caches; then the runs rotate between the three.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.bench import stats
from infra.bench.http_load import BASELINE_SOURCE, server_env
from infra.bench.validation import SignedIn
from infra.local.stack import FUNCTIONS_DIR, FUNCTIONS_FRAMEWORK, HOST, MAIN_PY, free_port, stop_group

POLL_SECONDS = 0.005


def first_answer(source: Path, target: str, path: str, headers: Mapping[str, str], env: Mapping[str, str],
                 log_path: Path, timeout: float = 120.0) -> tuple[float, int]:
    """Seconds from Popen to the first HTTP answer, and its status."""
    port = free_port()
    argv = [str(FUNCTIONS_FRAMEWORK), "--source", str(source), "--target", target, "--signature-type", "http",
            "--host", HOST, "--port", str(port)]
    with open(log_path, "ab") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=FUNCTIONS_DIR, env=dict(env), stdin=subprocess.DEVNULL,  # noqa: S603
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            connection = http.client.HTTPConnection(HOST, port, timeout=30)
            try:
                connection.request("GET", path, headers=dict(headers))
                response = connection.getresponse()
                response.read()
                return time.perf_counter() - start, response.status
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                pass
            finally:
                connection.close()
            if proc.poll() is not None:
                raise RuntimeError(f"{target} exited with {proc.returncode} before answering; log {log_path}")
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"{target} did not answer within {timeout} s; log {log_path}")
            time.sleep(POLL_SECONDS)
    finally:
        stop_group(proc.pid, grace=5, reap=proc.poll)
        proc.wait(timeout=10)


def cold_start(signed_in: SignedIn, log_dir: Path, *, runs: int, warmup: bool, workers: int, threads: int
               ) -> dict[str, Any]:
    env = {**os.environ, **server_env(workers, threads), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(FUNCTIONS_DIR), os.environ.get("PYTHONPATH", "")) if p)}
    session = {"Authorization": f"Bearer {signed_in.access_token}", "X-Device-Id": signed_in.signed_device_id}
    kinds: dict[str, tuple[Path, str, str, Mapping[str, str]]] = {
        "apiCurrent": (MAIN_PY, "api", "/v1/sessions/current", session),
        "apiJwks": (MAIN_PY, "api", "/.well-known/jwks.json", {}),
        "baseline": (BASELINE_SOURCE, "hello", "/", {}),
    }
    log_path = log_dir / "cold-start.log"
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    names = list(kinds)
    first = 0 if warmup else 1
    for round_number in range(first, runs + 1):  # round 0 warms the caches and is not counted
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            source, target, path, headers = kinds[name]
            seconds, status = first_answer(source, target, path, headers, env, log_path)
            if status != 200:
                raise RuntimeError(f"cold start {name}: first answer was {status}, not 200; log {log_path}")
            if round_number > 0:
                samples[name].append(seconds)
    result: dict[str, Any] = {name: stats.summary(values) for name, values in samples.items()}
    result["runs"] = runs
    result["samplesMs"] = {name: [round(value * 1000, 1) for value in values] for name, values in samples.items()}
    baseline = result["baseline"]["medianMs"]
    result["current"] = stats.verdict(stats.ratio(result["apiCurrent"]["medianMs"], baseline), 1.3)
    result["jwks"] = stats.verdict(stats.ratio(result["apiJwks"]["medianMs"], baseline), 1.3)
    return result

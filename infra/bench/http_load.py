"""`GET /v1/sessions/current` under concurrent load, against a trivial function on the same server.

Both functions run under the `functions-framework` CLI without `--debug`, which is its
production server: gunicorn with gthread workers (functions_framework/_http/gunicorn.py). Its
defaults are WORKERS=1 and THREADS=4 x CPUs; the benchmark sets both explicitly (same values for
both functions) so the figures do not depend on how many CPUs the machine reports. The load
comes from `wrk` on loopback, with a Lua script that adds the session's headers and prints the
figures as JSON. Runs alternate A-B-C-C-B-A so drift in the machine's load hits all alike. The CPU
time each function's processes and the Firestore emulator spent during each run is read from
/proc, so the figures also say where the machine's two cores went per request. A third
function (`read_one` in baseline_function.py) does nothing but the one bare document read strict
validation needs: the api's place between it and the trivial function says where the time goes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import requests

from infra.bench import stats
from infra.bench.validation import SignedIn
from infra.local.stack import Stack, free_port, group_stats

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_report.lua"
BASELINE_SOURCE = HERE / "baseline_function.py"
CURRENT_PATH = "/v1/sessions/current"


def group_cpu_seconds(pgid: int | None) -> float:
    """CPU time (user + system) used so far by the live processes of one process group."""
    if pgid is None:
        return 0.0
    ticks = sum(int(rest[11]) + int(rest[12]) for rest in group_stats(pgid) if len(rest) > 12)
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def server_env(workers: int, threads: int) -> dict[str, str]:
    """functions-framework's gunicorn reads WORKERS and THREADS from the environment."""
    return {"WORKERS": str(workers), "THREADS": str(threads)}


def run_wrk(url: str, *, seconds: float, connections: int, threads: int, headers: dict[str, str]) -> dict[str, Any]:
    wrk = wrk_binary()
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    env = {**os.environ, "BENCH_AUTHORIZATION": headers.get("Authorization", ""),
           "BENCH_DEVICE_ID": headers.get("X-Device-Id", "")}
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(WRK_SCRIPT), url]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)  # noqa: S603
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            figures["requestsPerSecond"] = figures["requests"] / (figures["durationUs"] / 1e6)
            return figures
    raise RuntimeError(f"wrk printed no figures (exit {done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}")


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """All runs of one function: throughput over the total time; latency percentiles averaged."""
    requests = sum(run["requests"] for run in runs)
    seconds = sum(run["durationUs"] for run in runs) / 1e6
    return {
        "requestsPerSecond": requests / seconds,
        "requests": requests,
        "functionCpuMsPerRequest": sum(run["functionCpuSeconds"] for run in runs) * 1000 / max(1, requests),
        "firestoreCpuMsPerRequest": sum(run["firestoreCpuSeconds"] for run in runs) * 1000 / max(1, requests),
        "p50Ms": sum(run["p50Us"] for run in runs) / len(runs) / 1000,
        "p99Ms": sum(run["p99Us"] for run in runs) / len(runs) / 1000,
        "errors": sum(run["non2xx"] + run["connectErrors"] + run["readErrors"] + run["writeErrors"]
                      + run["timeouts"] for run in runs),
        "runs": runs,
    }


def http_load(stack: Stack, signed_in: SignedIn, *, seconds: float, warmup_seconds: float, rounds: int,
              connections: int, wrk_threads: int, workers: int, threads: int) -> dict[str, Any]:
    if wrk_binary() is None:
        return {"skipped": "wrk is not installed (infra/local/bench installs it: apt-get install wrk)"}
    env = server_env(workers, threads)
    api = stack.start_function("api", "http", extra_env=env, port=free_port())
    baseline = stack.start_function("hello", "http", extra_env=env, port=free_port(), source=BASELINE_SOURCE)
    bare_read = stack.start_function("read_one", "http", extra_env={**env, "BENCH_DOCUMENT": signed_in.document_path},
                                     port=free_port(), source=BASELINE_SOURCE)
    headers = {"Authorization": f"Bearer {signed_in.access_token}", "X-Device-Id": signed_in.signed_device_id}
    targets = {"api": (api.url + CURRENT_PATH, headers), "trivial": (baseline.url + "/", {}),
               "bareRead": (bare_read.url + "/", {})}
    try:
        for name, (url, sent) in targets.items():
            answer = requests.get(url, headers=sent, timeout=10)
            if answer.status_code != 200:
                raise RuntimeError(f"{name} answered {answer.status_code} before the load: {answer.content[:300]!r}")
        for url, sent in targets.values() if warmup_seconds > 0 else ():
            run_wrk(url, seconds=warmup_seconds, connections=connections, threads=wrk_threads, headers=sent)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        servers = {"api": api, "trivial": baseline, "bareRead": bare_read}
        order = ["trivial", "api", "bareRead"]
        for round_number in range(rounds):
            for name in order if round_number % 2 == 0 else order[::-1]:
                url, sent = targets[name]
                function_cpu = group_cpu_seconds(servers[name].pid)
                firestore_cpu = group_cpu_seconds(stack.firestore.pid)
                run = run_wrk(url, seconds=seconds, connections=connections, threads=wrk_threads, headers=sent)
                run["functionCpuSeconds"] = group_cpu_seconds(servers[name].pid) - function_cpu
                run["firestoreCpuSeconds"] = group_cpu_seconds(stack.firestore.pid) - firestore_cpu
                runs[name].append(run)
    finally:
        for server in (api, baseline, bare_read):
            server.stop()
    result: dict[str, Any] = {
        "server": {"command": "functions-framework (gunicorn gthread)", "workers": workers, "threads": threads},
        "load": {"tool": "wrk", "connections": connections, "threads": wrk_threads, "secondsPerRun": seconds,
                 "rounds": rounds},
        **{name: _combine(values) for name, values in runs.items()},
    }
    throughput = stats.ratio(result["api"]["requestsPerSecond"], result["trivial"]["requestsPerSecond"])
    result["throughput"] = stats.verdict(throughput, 0.5, at_least=True)
    result["p50Ratio"] = stats.ratio(result["api"]["p50Ms"], result["trivial"]["p50Ms"])
    result["p99Ratio"] = stats.ratio(result["api"]["p99Ms"], result["trivial"]["p99Ms"])
    result["versusBareRead"] = stats.ratio(result["api"]["requestsPerSecond"], result["bareRead"]["requestsPerSecond"])
    return result

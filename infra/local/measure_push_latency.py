"""How long from a revoke call returning to its force_logout reaching the FCM stand-in.

    .venv/bin/python -m infra.local.measure_push_latency [--runs 50]

Starts a private stack on free ports (real Firestore, Pub/Sub and Auth emulators, the api and
both event functions under functions-framework, the FCM stand-in process), signs a user in on a
phone, then `runs` times: signs in again (the last revoke asks for a newer sign-in), signs in a
second device with a fresh push token, revokes it from the phone through `DELETE /v1/sessions/{id}`,
and takes the stand-in's receive time of that token's force_logout minus the moment the DELETE
returned (one clock: everything is on this machine).
Prints every sample, then the median and the worst. Stops everything it started.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from infra.local.stack import IPHONE, PIXEL, FcmStandin, Ports, Stack, ensure_dev_keys


def login(api: str, id_token: str, device: dict[str, str], push_token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"device": device}
    if push_token:
        body["push"] = {"token": push_token, "provider": "fcm"}
    answer = requests.post(f"{api}/v1/sessions", json=body, headers={"Authorization": f"Bearer {id_token}"},
                           timeout=30)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def force_logout_time(fcm: FcmStandin, token: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in fcm.messages():
            message = record["message"]
            if message.get("token") == token and message.get("data", {}).get("action") == "force_logout":
                return float(record["receivedAt"])
        time.sleep(0.01)
    raise TimeoutError(f"no force_logout for {token} within {timeout} s")


def measure(stack: Stack, runs: int) -> list[float]:
    api = stack.start_function("api", "http").url
    stack.start_functions(["on_session_written", "send_session_push"])
    email = f"latency-{uuid.uuid4().hex[:12]}@example.com"
    _, id_token = stack.auth.sign_up(email)
    phone = login(api, id_token, IPHONE, None)
    phone_headers = {"Authorization": f"Bearer {phone['accessToken']}", "X-Device-Id": phone["deviceId"]}
    samples = []
    for run in range(runs):
        if run:  # a closure asks for a sign-in made after it, a second later (`auth_time` has whole seconds)
            time.sleep(1.05)
            id_token = stack.auth.sign_in(email)[1]
        token = f"tok-{uuid.uuid4().hex}"
        other = login(api, id_token, PIXEL, token)
        time.sleep(0.3)  # let its own new-login event pass first
        answer = requests.delete(f"{api}/v1/sessions/{other['session']['sessionId']}", headers=phone_headers,
                                 timeout=30)
        returned = time.time()
        answer.raise_for_status()
        latency = force_logout_time(stack.fcm, token) - returned
        samples.append(latency)
        print(f"run {run + 1:2d}: {latency * 1000:7.1f} ms", flush=True)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="push-latency-") as tmp:
        keys_file = ensure_dev_keys(Path(tmp) / "keys.json")
        stack = Stack(Ports.free(), Path(tmp) / "logs", keys_file=keys_file)
        try:
            stack.start()
            samples = measure(stack, args.runs)
        finally:
            stack.stop()
    print(f"revoke returned -> force_logout at the FCM stand-in, {len(samples)} runs: "
          f"median {statistics.median(samples) * 1000:.1f} ms, worst {max(samples) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

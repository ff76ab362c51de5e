"""The fast tier: no emulator, no network, seconds in all.

Every test runs on settings read afresh from its own environment (`configure`) and on a keyring
of its own, so nothing leaks between tests. A test here that asks for the stack fails: it belongs
in an emulator suite.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import functions_framework
import pytest

from mydevices import clock, config
from mydevices.tokens import keys
from support import ROOT


@pytest.fixture(scope="session")
def stack() -> NoReturn:
    pytest.fail("tests/unit runs without emulators: a test that needs the stack belongs in an emulator suite")


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Settings and keyring read again for this test, from a keyring file of its own."""
    # The product's defaults, as when tests/unit runs alone: in a whole-suite run the shared stack's
    # presets (support.plugin: the fresh-session window and the rate limits off) are in os.environ.
    for name in [name for name in os.environ if name.startswith("MYDEVICES_")]:
        monkeypatch.delenv(name)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys.generate_keyring_doc()), encoding="utf-8")
    monkeypatch.setenv("MYDEVICES_KEYS_FILE", str(keys_file))
    monkeypatch.delenv("MYDEVICES_KEYS_JSON", raising=False)
    config.settings.cache_clear()
    keys.keyring.cache_clear()
    yield
    clock.reset()  # a test that moved the clock moved it for itself
    config.settings.cache_clear()
    keys.keyring.cache_clear()


@pytest.fixture()
def configure(monkeypatch: pytest.MonkeyPatch) -> Callable[..., config.Settings]:
    """`configure(MYDEVICES_X="...")`: these variables set (None: unset), settings read afresh."""

    def apply(**env: str | None) -> config.Settings:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        config.settings.cache_clear()
        keys.keyring.cache_clear()
        return config.settings()

    return apply


@pytest.fixture()
def ring() -> keys.Keyring:
    return keys.keyring()


@pytest.fixture()
def api_client(configure: Callable[..., config.Settings]) -> Callable[..., Any]:
    """`api_client(target="api", source=main.py)`: Flask's test client of that function, in-process,
    on no database: Firestore points at a closed port, so a request that got as far as the
    database would answer 503, never the 4xx a test expects from the edge."""
    configure(FIRESTORE_EMULATOR_HOST="127.0.0.1:9", MYDEVICES_FIRESTORE_TIMEOUT_SECONDS="1",
              MYDEVICES_REFRESH_RATE_PER_IP="off", MYDEVICES_LOGIN_RATE_PER_IP="off")

    def make(target: str = "api", source: str = str(ROOT / "functions" / "main.py")) -> Any:
        return functions_framework.create_app(target=target, source=source, signature_type="http").test_client(
            use_cookies=False)

    return make

"""A request flows one way (docs/design.md, "One refresh, top to bottom"): edge -> flow -> what flows
share -> store, never back. Traced on a real refresh (the stack's Firestore and Auth), not read from
the imports: a decorator, a callback handed down or an edge helper called from a flow all show here."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from infra.bench.inproc_api import Device, InProcessApi
from infra.local.stack import IPHONE, Stack


def layer(module: str) -> int:
    """0: the edge (main.py and mydevices/http/), 1: the flows, 2: everything they share."""
    if module == "main" or module.startswith("mydevices.http"):
        return 0
    return 1 if module.startswith("mydevices.flows") else 2


def ours(module: str) -> bool:
    return module == "main" or module.startswith("mydevices")


def test_one_refresh_passes_from_main_to_firestore_without_turning_back(stack: Stack) -> None:
    api = InProcessApi()
    _, id_token = stack.auth.sign_up()
    phone = Device(api, dict(IPHONE))
    phone.login(id_token)
    phone.refresh()  # imports and first-use set-up are not the path
    calls: list[tuple[str, str]] = []

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event == "call" and ours(module := frame.f_globals.get("__name__", "")):
            caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
            calls.append((caller, module))

    sys.setprofile(profile)
    try:
        phone.refresh()
    finally:
        sys.setprofile(None)
    path = list(dict.fromkeys(module for _, module in calls))
    assert path[:2] == ["main", "mydevices.http.routing"] and "mydevices.flows.refresh" in path, path
    assert "mydevices.store" in path and path[-1] == "mydevices.http.render", path
    back = sorted({(caller, module) for caller, module in calls if ours(caller) and layer(module) < layer(caller)})
    assert back == [], f"calls back toward the edge: {back}"

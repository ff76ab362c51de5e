"""A function served for as long as a test module (or a block) needs it, then stopped.

Most suites need the api (or the callables) with a setting or two of their own for the whole module:
`function_url("api", {...})` is that fixture; `serving(...)` is the same as a block, for fixtures and
tests whose environment is only known once they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.local.stack import FunctionServer, Stack, free_port


def serving(stack: Stack, target: str, env: Mapping[str, str] | None = None, *, signature_type: str | None = None,
            own_port: bool = False, source: Path | str | None = None) -> FunctionServer:
    """`target` started with the stack's environment plus `env`; a `with` block stops it.

    `own_port` keeps it off the port the stack reserves for the target's role, where the session's
    own `api` (or trigger, push function) belongs.
    """
    return stack.start_function(target, signature_type, env, free_port() if own_port else None, source=source)


def _fixture(target: str, env: Mapping[str, str] | None, yield_url: bool, **how: Any) -> Callable[..., Any]:
    @pytest.fixture(scope="module")
    def served(stack: Stack) -> Iterator[Any]:
        with serving(stack, target, env, **how) as handle:
            yield handle.url if yield_url else handle

    return served


def function_url(target: str, env: Mapping[str, str] | None = None, *, signature_type: str | None = None,
                 own_port: bool = False, source: Path | str | None = None) -> Callable[..., Any]:
    """A module fixture: the base URL of `target` served with `env` (see `serving`)."""
    return _fixture(target, env, True, signature_type=signature_type, own_port=own_port, source=source)


def function_server(target: str, env: Mapping[str, str] | None = None, *, signature_type: str | None = None,
                    own_port: bool = False, source: Path | str | None = None) -> Callable[..., Any]:
    """A module fixture: the handle (`.url`, `.log_path`, ...) of `target` served with `env`."""
    return _fixture(target, env, False, signature_type=signature_type, own_port=own_port, source=source)

"""The benchmark command: every measurement of issue 5, in one process run, on a private stack.

    infra/local/bench [--users 100000] [--only SECTION ...] [--tiny] [--out PATH] [--no-docs]

Starts the emulators, the Auth emulator and the FCM stand-in on free ports (infra.local.stack),
runs the sections below in one process so every ratio compares like with like, prints the
table, writes every figure to `.local/bench/results.json` and, on a full run with the default
sizes, the table into docs/benchmarks.md; it stops everything it started. Sections, in the order they run (the
heavy seeding last, so its data cannot slow the others):

  strict_validation  1. validation.validate vs PyJWT decode + bare DocumentReference.get()
  jwks_verification  2. PyJWKClient on our JWKS vs PyJWT decode with a fixed key
  firebase_admin     3. ours vs firebase-admin verify_id_token(check_revoked=True)
  http               4. GET /v1/sessions/current under wrk vs a trivial function (skipped without wrk)
  cold_start         7. process start to first answer, api vs a bare function importing Firestore
  revoke_to_push     8. DELETE returned -> force_logout at the FCM stand-in
  cost               6. reads / writes / Auth lookups / publishes / FCM per call, counted at the clients;
                        the Python and the Node guard (require_session, requireSession) per validated call
  scale              5. validation and listing at 100,000 users vs 1,000
  device_binding     9. a DPoP-bound refresh vs an unbound one, interleaved; proof check, nonce, replay list

A section that fails is recorded with its error and the others still run; the exit status is
then 1. `run_sections` is what tests/platform/test_benchmarks.py calls on the test session's stack.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.bench import report
from infra.bench.environment import ensure_importable, product_environment
from infra.local.stack import (
    FRESH_SESSION_WINDOW_OFF,
    IPHONE,
    LOCAL_DIR,
    RATE_LIMITS_OFF,
    REPO_ROOT,
    Ports,
    Stack,
    StackError,
    ensure_dev_keys,
)

DEFAULT_JSON = LOCAL_DIR / "bench" / "results.json"
DEFAULT_DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTIONS = ("strict_validation", "jwks_verification", "firebase_admin", "http", "cold_start", "revoke_to_push",
            "cost", "device_binding", "scale")


@dataclass(frozen=True)
class Options:
    validation_iterations: int = 1000
    validation_warmup: int = 100
    jwks_iterations: int = 5000
    firebase_iterations: int = 300
    http_seconds: float = 8.0
    http_warmup_seconds: float = 2.0
    http_rounds: int = 2
    http_connections: int = 16
    wrk_threads: int = 1
    workers: int = 1
    threads: int = 8
    cold_runs: int = 5
    cold_warmup: bool = True
    push_runs: int = 20
    revoke_others: int = 500
    users: int = 100_000
    small_users: int = 1_000
    sessions_per_user: int = 3
    seed_threads: int = 2
    scale_iterations: int = 300
    list_iterations: int = 15
    scale_samples: int = 100
    binding_iterations: int = 300
    guard_calls: int = 5
    guard_iterations: int = 200

    @classmethod
    def tiny(cls) -> Options:
        """Every code path, on sizes that take seconds: for tests/platform/test_benchmarks.py."""
        return cls(validation_iterations=20, validation_warmup=2, jwks_iterations=50, firebase_iterations=5,
                   http_seconds=1, http_warmup_seconds=0, http_rounds=1, http_connections=4, cold_runs=1,
                   cold_warmup=False, push_runs=1, revoke_others=6, users=60, small_users=20, scale_iterations=10,
                   list_iterations=2, scale_samples=4, binding_iterations=5,
                   guard_calls=3, guard_iterations=5)


Progress = Callable[[str], None]


def _signed_in(stack: Stack) -> tuple[Any, str]:
    """A session logged in through the api (in-process), and the Firebase ID token behind it."""
    from infra.bench.inproc_api import Device, InProcessApi
    from infra.bench.validation import SignedIn

    _, id_token = stack.auth.sign_up()
    device = Device(InProcessApi(), dict(IPHONE))
    device.login(id_token)
    return SignedIn.from_login(device.access_token, device.device_id), id_token


def run_sections(stack: Stack, options: Options, log_dir: Path, *, only: tuple[str, ...] = SECTIONS,
                 progress: Progress = print) -> dict[str, Any]:
    """Run the chosen sections on a started stack, in this process (its environment must be the stack's)."""
    from infra.bench import binding, cold_start, cost, http_load, revoke_to_push, scale, validation

    signed_in, id_token = _signed_in(stack)
    jwks_server = stack.start_function("api", "http") if "jwks_verification" in only else None
    o = options
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "strict_validation": lambda: validation.strict_validation(
            signed_in, stack.project, o.validation_iterations, o.validation_warmup),
        "jwks_verification": lambda: validation.jwks_verification(
            signed_in, f"{jwks_server.url}/.well-known/jwks.json" if jwks_server else "", o.jwks_iterations,
            max(1, o.jwks_iterations // 20)),
        "firebase_admin": lambda: validation.versus_firebase_admin(
            signed_in, id_token, o.firebase_iterations, max(1, o.firebase_iterations // 10)),
        "http": lambda: http_load.http_load(
            stack, signed_in, seconds=o.http_seconds, warmup_seconds=o.http_warmup_seconds, rounds=o.http_rounds,
            connections=o.http_connections, wrk_threads=o.wrk_threads, workers=o.workers, threads=o.threads),
        "cold_start": lambda: cold_start.cold_start(
            signed_in, log_dir, runs=o.cold_runs, warmup=o.cold_warmup, workers=o.workers, threads=o.threads),
        "revoke_to_push": lambda: revoke_to_push.revoke_to_push(stack, o.push_runs),
        "cost": lambda: cost.cost_table(stack, revoke_others=o.revoke_others, guard_calls=o.guard_calls,
                                        guard_iterations=o.guard_iterations,
                                        guard_warmup=max(1, o.guard_iterations // 10)),
        "device_binding": lambda: binding.device_binding(
            stack, o.binding_iterations, max(1, o.binding_iterations // 10)),
        "scale": lambda: scale.scale(
            stack, small_users=o.small_users, large_users=o.users, per_user=o.sessions_per_user,
            seed_threads=o.seed_threads, iterations=o.scale_iterations, list_iterations=o.list_iterations,
            samples=o.scale_samples, progress=progress),
    }
    sections: dict[str, Any] = {}
    try:
        for name in SECTIONS:
            if name not in only:
                continue
            progress(f"bench: {name} ...")
            started = time.monotonic()
            try:
                sections[name] = runners[name]()
            except Exception as error:  # one broken section must not cost the others their figures
                sections[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
                progress(f"bench: {name} FAILED: {type(error).__name__}: {error}")
            sections[name]["seconds"] = round(time.monotonic() - started, 1)
            if jwks_server is not None and name == "jwks_verification":
                jwks_server.stop()
    finally:
        if jwks_server is not None:
            jwks_server.stop()
    return sections


DOCS_SKELETON = """# Benchmarks

Written by `infra/local/bench` (issue 5); the table below is replaced on every run.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra/local/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks that every section runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_JSON, help=f"JSON results (default {DEFAULT_JSON})")
    parser.add_argument("--docs", type=Path, default=None,
                        help=f"markdown file to update (default: {_shown(DEFAULT_DOCS)}, on a full run only)")
    parser.add_argument("--no-docs", action="store_true", help="do not touch the markdown file")
    for field in fields(Options):
        default = getattr(Options(), field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"default {default}")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"default {default}")
    args = parser.parse_args(argv)
    options = Options.tiny() if args.tiny else Options()
    overrides = {f.name: getattr(args, f.name) for f in fields(Options) if getattr(args, f.name) is not None}
    options = replace(options, **overrides)
    only = tuple(args.only) if args.only else SECTIONS
    command = shlex.join(["infra/local/bench", *(argv if argv is not None else sys.argv[1:])])

    ensure_importable()
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mydevices-bench-") as tmp:
        log_dir = LOCAL_DIR / "bench" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        keys = ensure_dev_keys(Path(tmp) / "keys.json")
        stack = Stack(Ports.free(), log_dir, keys_file=keys, env_extra={**RATE_LIMITS_OFF, **FRESH_SESSION_WINDOW_OFF})
        print(f"bench: starting the emulators (logs in {log_dir}) ...", flush=True)
        try:
            stack.start()
            with product_environment(stack.env):
                sections = run_sections(stack, options, log_dir, only=only,
                                        progress=lambda line: print(line, flush=True))
        except StackError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        finally:
            stack.stop()
    results = results_document(sections, command=command, started_at=started_at,
                               seconds=time.monotonic() - clock, load=load, options=options, json_path=args.out)
    report.write_json(args.out, results)
    block = report.render(results)
    print("\n" + block + "\n", flush=True)
    full_run = only == SECTIONS and not args.tiny and not overrides
    docs = args.docs or (DEFAULT_DOCS if full_run else None)
    if docs is not None and not args.no_docs:
        report.update_docs(docs, block, DOCS_SKELETON)
        print(f"bench: wrote {_shown(args.out)} and {_shown(docs)} ({results['meta']['durationSeconds']:.0f} s)")
    else:
        print(f"bench: wrote {_shown(args.out)} (docs untouched: not a full default run; --docs PATH to write them)")
    failed = [name for name, section in sections.items() if "error" in section]
    if failed:
        print(f"bench: failed sections: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def results_document(sections: dict[str, Any], *, command: str, started_at: datetime, seconds: float,
                     load: tuple[float, float, float], options: Options, json_path: Path) -> dict[str, Any]:
    """The JSON file's content: the sections' figures and what they were measured with."""
    return {
        "meta": {
            "command": command,
            "startedAt": started_at.isoformat(timespec="seconds"),
            "durationSeconds": seconds,
            "cpus": os.cpu_count(),
            "loadAverage": [round(value, 2) for value in load],
            "python": sys.version.split()[0],
            "json": _shown(json_path),
            "options": asdict(options),
        },
        "sections": sections,
    }


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())

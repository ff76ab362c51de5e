"""Crash safety for `infra/local/run`: a pidfile naming every process group it started, and the
cleanup that stops what a hard-killed run left behind (the shell wrapper's EXIT trap runs it).

The pidfile is rewritten on every start and stop, so it always names what runs right now.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from infra.local.stack.processes import ManagedProcess, cmdline, group_alive, start_time, stop_group


def record(pidfile: Path, processes: Iterable[ManagedProcess]) -> None:
    """Write `processes`' groups (and their detached children's) with their start times, owned by us."""
    entries = []
    for proc in processes:
        if proc.pid is not None and proc.running:
            entries.append({"name": proc.name, "pgid": proc.pid, "start": start_time(proc.pid)})
            for pgid in proc.child_groups():  # firebase-tools' java emulators, detached
                entries.append({"name": f"{proc.name} child", "pgid": pgid, "start": start_time(pgid)})
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(json.dumps({"owner": os.getpid(), "processes": entries}, indent=2))


def owner(pidfile: Path) -> int | None:
    """The pid of the run that wrote `pidfile`, if it names one."""
    try:
        return int(json.loads(pidfile.read_text())["owner"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def cleanup_leftovers(pidfile: Path) -> list[str]:
    """Stop the process groups a previous `run` recorded, unless that run is still alive.

    A group is ours if its leader is the very process recorded (same pid and start time), or if
    the leader is gone but the group still has members (Linux does not reuse a pid while a
    process group of that id exists).
    """
    try:
        doc = json.loads(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return []
    run = int(doc.get("owner", 0))
    if run and run != os.getpid() and start_time(run) is not None and "infra.local.stack" in cmdline(run):
        return []  # that run is still alive: it owns its processes
    stopped = []
    for entry in doc.get("processes", []):
        pgid, start = int(entry["pgid"]), entry.get("start")
        leader_start = start_time(pgid)
        ours = leader_start == start if leader_start is not None else group_alive(pgid)
        if start is not None and ours and group_alive(pgid):
            stop_group(pgid, grace=5)
            stopped.append(str(entry["name"]))
    pidfile.unlink(missing_ok=True)
    return stopped

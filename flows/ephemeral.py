"""Processes an interrupted ``mgz run`` left behind: its temporary Prefect server and task workers.

Without a Prefect server configured, ``mgz run`` lets Prefect start a temporary
local one (a ``uvicorn`` child process) and a pool of worker processes. Prefect
stops them when the run exits normally, but a run killed with SIGKILL (or by
the out-of-memory killer) cannot: they stay behind, holding memory and a port,
and every later killed run adds more.

So every process a run starts carries ``MGZ_RUN_PID`` (the run's own pid) in its
environment, and the next run first stops the processes whose run is gone.
Processes of a run that is still alive (another ``mgz run`` in parallel) are
left alone; so is anything without the marker. Linux only (``/proc``); elsewhere
nothing is reaped.

No Prefect import here: this runs before the flow is loaded.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

MARKER = "MGZ_RUN_PID"
PROC = Path("/proc")


def mark_run() -> None:
    """Mark this process as an ``mgz run``: every process it starts from now on inherits the marker."""
    os.environ[MARKER] = str(os.getpid())


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's process
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _run_alive(pid: int) -> bool:
    """The run ``pid`` is still going: the process exists and is an mgz command (``run`` or
    ``serve``; a pid reused by another program does not count)."""
    command = _cmdline(pid)
    return "pipeline.cli" in command or "mgz" in command


def orphans() -> dict[int, int]:
    """pid -> run pid of every marked process whose run is gone (this process and its run excluded)."""
    if not PROC.is_dir():
        return {}
    own = {os.getpid(), int(os.environ.get(MARKER, "0") or 0)}
    found: dict[int, int] = {}
    alive: dict[int, bool] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        marker = _environ(int(entry.name)).get(MARKER, "")
        if not marker.isdigit() or int(marker) in own:
            continue
        run = int(marker)
        if run not in alive:
            alive[run] = _run_alive(run)
        if not alive[run]:
            found[int(entry.name)] = run
    return found


def reap_orphans(grace: float = 5.0) -> list[int]:
    """Stop (SIGTERM, then SIGKILL after ``grace`` seconds) what dead runs left; returns their pids."""
    found = orphans()
    for pid in found:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any((PROC / str(pid)).exists() and _alive(pid) for pid in found):
        time.sleep(0.1)
    for pid in found:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return sorted(found)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"

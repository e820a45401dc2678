"""Which process owns a RUNNING run: host name, process id and the process's start time.

A run whose process was killed (SIGKILL, OOM, power loss) never ends itself. The next time
the store is opened on the same host, a run whose process is gone, or whose pid now belongs
to a different process (the start time tells them apart), is marked KILLED. Runs of other
hosts are left alone: their processes cannot be seen from here.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

# The start time is boot time + ticks since boot; boot time as the kernel reports it moves a
# little when the wall clock is adjusted, so the same process may read a few ms apart.
_START_TOLERANCE_MS = 2_000


@dataclass(frozen=True)
class ProcessOwner:
    """A process, identified so that a reused pid is not mistaken for it."""

    host: str
    pid: int
    start_ms: int | None  # None where the platform does not tell (no /proc)


def current_owner() -> ProcessOwner:
    """This process.

    >>> me = current_owner()
    >>> me.pid == os.getpid() and is_alive(me)
    True
    """
    return ProcessOwner(socket.gethostname(), os.getpid(), process_start_ms(os.getpid()))


def process_start_ms(pid: int) -> int | None:
    """When process ``pid`` started (epoch ms), from ``/proc``; None if unknown or gone."""
    stat, boot_ms = _read_stat(pid), _boot_ms()
    if stat is None or boot_ms is None:
        return None
    ticks = int(stat[19])  # field 22 of proc(5), counting from the state (field 3)
    return boot_ms + ticks * 1000 // os.sysconf("SC_CLK_TCK")


def is_alive(owner: ProcessOwner) -> bool:
    """True while the owner's process (on this host) still runs."""
    if not Path("/proc/self/stat").exists():  # no /proc (macOS): a live pid is all we know
        return _pid_exists(owner.pid)
    stat = _read_stat(owner.pid)
    if stat is None or stat[0] in ("Z", "X"):  # gone, or a zombie waiting for its parent
        return False
    started = process_start_ms(owner.pid)
    if owner.start_ms is None or started is None:
        return True
    return abs(started - owner.start_ms) <= _START_TOLERANCE_MS


def _read_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


@functools.cache
def _boot_ms() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) * 1000
    except OSError:
        return None
    return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid
    return True

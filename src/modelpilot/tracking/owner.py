"""Which process owns a RUNNING run: host name, process id and the process's start time.

A run whose process was killed (SIGKILL, OOM, power loss) never ends itself. The next time
the store is opened on the same host, a run whose process is gone, or whose pid now belongs
to a different process (the start time tells them apart), is marked KILLED. Runs of other
hosts are left alone: their processes cannot be seen from here.

The start time that decides is the kernel's own: clock ticks since boot, with the boot's id.
Converted to wall-clock time it moves whenever the clock is stepped (NTP, a virtual machine
resumed from a pause), and a live process would then read as a different one; the epoch
``start_ms`` is kept for rows written before the ticks were, and for people to read.
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
    boot_id: str | None = None  # the kernel's boot id: after a reboot no old pid is alive
    start_ticks: int | None = None  # clock ticks from boot to the process's start


def current_owner() -> ProcessOwner:
    """This process.

    >>> me = current_owner()
    >>> me.pid == os.getpid() and is_alive(me)
    True
    """
    pid = os.getpid()
    return ProcessOwner(
        socket.gethostname(), pid, process_start_ms(pid), _boot_id(), _start_ticks(pid)
    )


def process_start_ms(pid: int) -> int | None:
    """When process ``pid`` started (epoch ms), from ``/proc``; None if unknown or gone."""
    ticks, boot_ms = _start_ticks(pid), _boot_ms()
    if ticks is None or boot_ms is None:
        return None
    return boot_ms + ticks * 1000 // os.sysconf("SC_CLK_TCK")


def is_alive(owner: ProcessOwner) -> bool:
    """True while the owner's process (on this host) still runs."""
    if not Path("/proc/self/stat").exists():  # no /proc (macOS): a live pid is all we know
        return _pid_exists(owner.pid)
    stat = _read_stat(owner.pid)
    if stat is None or stat[0] in ("Z", "X"):  # gone, or a zombie waiting for its parent
        return False
    boot = _boot_id()
    if owner.boot_id is not None and owner.start_ticks is not None and boot is not None:
        return owner.boot_id == boot and int(stat[19]) == owner.start_ticks
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


def _start_ticks(pid: int) -> int | None:
    """Clock ticks from boot to process ``pid``'s start; None if unknown or gone."""
    stat = _read_stat(pid)
    return None if stat is None else int(stat[19])  # field 22 of proc(5), from field 3


def _boot_ms() -> int | None:
    """Boot time as wall-clock ms now (read each time: a stepped clock moves it)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) * 1000
    except OSError:
        return None
    return None


@functools.cache
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid
    return True

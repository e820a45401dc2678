"""Several data-plane processes on one port: ``modelpilot serve ... --replicas N``.

One Python process serves on one core (the event loop, the GIL). To use a machine's cores, the
supervisor here starts N replica processes, each a complete ``modelpilot serve`` with its own
listening socket bound with ``SO_REUSEPORT`` to the same address, so the kernel spreads new
connections over them (by a hash of the connection's addresses). The supervisor binds nothing
itself and touches no request: it starts the replicas, forwards SIGTERM/SIGINT to them once
(each drains: it answers what is queued and flushes its prediction log), restarts a replica
that dies (a bounded number of times in a window, each restart logged) and gives up, stopping
the others, when replicas keep dying. Given an :class:`~modelpilot.serving.autoscale.Autoscaler`
it also adds and drains replicas on their queue depth (``--replicas MIN:MAX``).

Why processes that bind their own sockets, not one socket shared by forked workers: a
replica is then exactly a ``modelpilot serve`` (same code path, restartable alone), and a
replacement binds again without any file descriptor passing. The kernel keeps each
replica's accept queue apart, so a dead replica's queued connections are reset (the client
sees a connection error, never a wrong answer) while the others' are untouched.

>>> budget = RestartBudget(max_restarts=2, window_s=60.0)
>>> [budget.allow(t) for t in (0.0, 1.0, 2.0, 61.5)]
[True, True, False, True]
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelpilot.serving.autoscale import Autoscaler

log = logging.getLogger(__name__)

# Exit codes of modelpilot errors raised while a replica starts (bad input, a missing model,
# a conflict, a refused token, a corrupt artifact): every restart would fail the same way.
CONFIG_EXIT_CODES = frozenset({2, 3, 4, 5, 7})
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` but not yet listening; with ``reuse_port`` other
    processes may bind the same address (``SO_REUSEPORT``, Linux 3.9+ and the BSDs), and the
    kernel balances new connections over those that listen.

    Listening is left to uvicorn, after the app's start-up: the kernel sends connections only
    to listening sockets, so a replica that is still loading (a restart) gets none.

    >>> with bound_socket("127.0.0.1", 0, reuse_port=True) as sock:
    ...     sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    1
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restarts past TIME_WAIT
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class RestartBudget:
    """At most ``max_restarts`` restarts of one replica within any ``window_s`` seconds.

    A replica that crashes now and then (an out-of-memory kill once a day) is restarted for
    ever; one that dies on every start (a broken model, a full disk) exhausts the budget in
    seconds, and the supervisor stops rather than spin.
    """

    max_restarts: int = 5
    window_s: float = 60.0
    recent: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        """Record a restart at ``now`` if the budget has room; False when it has none."""
        while self.recent and now - self.recent[0] >= self.window_s:
            self.recent.popleft()
        if len(self.recent) >= self.max_restarts:
            return False
        self.recent.append(now)
        return True

    def backoff_s(self) -> float:
        """Wait before the next start: 0 for the first restart in the window, then doubling
        from 0.25 s (a replica failing in a loop does not burn a core), at most 4 s."""
        return 0.0 if len(self.recent) <= 1 else min(0.25 * 2 ** (len(self.recent) - 2), 4.0)


@dataclass
class Replica:
    """One replica slot: its current process and its restart budget."""

    index: int
    budget: RestartBudget
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    start_at: float | None = None  # a pending (delayed) restart
    is_draining: bool = False  # removed by a scale-down: SIGTERM sent, not restarted


class ReplicasFailed(Exception):
    """A replica kept dying (or failed to start for a reason a restart cannot fix)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Supervisor:
    """Starts ``replicas`` processes, keeps them running, stops them together.

    ``command(index)`` is the argument list of replica ``index``; ``env`` is added to this
    process's environment. :meth:`run` blocks until every replica has exited; signals are
    taken synchronously (``sigtimedwait``), so no handler runs between two statements.

    With an ``autoscaler``, ``replicas`` is the starting count, and every ``rule.poll_s``
    the supervisor reads ``queue_depth(index)`` of each serving replica (None: unreadable,
    left out), feeds the mean to the autoscaler, starts a replica at the lowest free index
    or drains the highest one (SIGTERM once: it answers what it queued, then exits).
    """

    def __init__(
        self,
        command: Callable[[int], list[str]],
        replicas: int,
        *,
        env: Mapping[str, str] | None = None,
        max_restarts: int = 5,
        window_s: float = 60.0,
        autoscaler: Autoscaler | None = None,
        queue_depth: Callable[[int], float | None] | None = None,
    ) -> None:
        self.command = command
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.slots = [self._slot(i) for i in range(replicas)]
        self.env = dict(env or {})
        self.stopping = False
        self.failure: ReplicasFailed | None = None
        self.autoscaler = autoscaler
        self.queue_depth = queue_depth
        self.next_poll = 0.0

    def _slot(self, index: int) -> Replica:
        return Replica(index, RestartBudget(max_restarts=self.max_restarts, window_s=self.window_s))

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (then drain) or until replicas keep dying (raises)."""
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in self.slots:
                self._start(slot)
            while any(s.process is not None or s.start_at is not None for s in self.slots):
                self._wait_event()
                self._reap()
                self._start_due()
                self._autoscale(time.monotonic())
        except BaseException:  # the supervisor itself failed: no replica may outlive it
            self._signal_all(signal.SIGKILL)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if self.failure is not None:
            raise self.failure

    def _wait_event(self) -> None:
        due = [s.start_at for s in self.slots if s.start_at is not None]
        if self.autoscaler is not None and not self.stopping:
            due.append(self.next_poll)
        timeout = max(0.0, min(due) - time.monotonic()) if due else 5.0
        info = signal.sigtimedwait(_SIGNALS, timeout)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            name = signal.Signals(info.si_signo).name
            log.warning("%s received: replicas drain and stop", name)
            self._stop()  # a second signal forwards again: uvicorn then force-quits

    def _reap(self) -> None:
        for slot in list(self.slots):  # a drained replica's slot is removed
            process = slot.process
            if process is None or process.poll() is None:
                continue
            slot.process = None
            if slot.is_draining:
                self.slots.remove(slot)
                log.warning(
                    "replica %d (pid %d) drained and stopped (%s); %d serving",
                    slot.index,
                    process.pid,
                    _how(process.returncode),
                    len(self._serving()),
                )
            elif not self.stopping:
                self._replace(slot, process.pid, process.returncode)

    def _replace(self, slot: Replica, pid: int, code: int) -> None:
        how = _how(code)
        if code in CONFIG_EXIT_CODES:
            self._give_up(f"replica {slot.index} failed to start ({how})", code)
            return
        if not slot.budget.allow(time.monotonic()):
            budget = slot.budget
            self._give_up(
                f"replica {slot.index} died {budget.max_restarts + 1} times within "
                f"{budget.window_s:g} s (last: {how}); stopping every replica",
                6,
            )
            return
        slot.restarts += 1
        delay = slot.budget.backoff_s()
        log.error(
            "replica %d (pid %d) died (%s); restart %d in %.2f s",
            slot.index,
            pid,
            how,
            slot.restarts,
            delay,
        )
        slot.start_at = time.monotonic() + delay

    def _give_up(self, message: str, exit_code: int) -> None:
        log.error("%s", message)
        self.failure = ReplicasFailed(message, exit_code)
        self._stop()

    def _stop(self) -> None:
        """SIGTERM to every replica (each drains), and no pending restart. One draining after
        a scale-down has had its SIGTERM and is skipped the first time (a second makes it
        quit at once, which only a second stop signal asks for)."""
        first = not self.stopping
        self.stopping = True
        for slot in self.slots:
            slot.start_at = None
        self._signal_all(signal.SIGTERM, skip_draining=first)

    def _serving(self) -> list[Replica]:
        return [s for s in self.slots if not s.is_draining]

    def _autoscale(self, now: float) -> None:
        """Read the queues when a poll is due and add or drain one replica if asked."""
        if self.autoscaler is None or self.queue_depth is None or self.stopping:
            return
        if now < self.next_poll:
            return
        self.next_poll = now + self.autoscaler.rule.poll_s
        serving = self._serving()
        read = [self.queue_depth(s.index) for s in serving if s.process is not None]
        depths = [d for d in read if d is not None]
        mean = sum(depths) / len(depths) if depths else None
        wanted = self.autoscaler.observe(now, mean)
        if wanted > len(serving):
            used = {s.index for s in self.slots}
            slot = self._slot(next(i for i in count() if i not in used))
            self.slots.append(slot)
            log.warning("scaling up to %d replicas (queue %.1f rows per replica)", wanted, mean)
            self._start(slot)
        elif wanted < len(serving):
            slot = max(serving, key=lambda s: s.index)
            log.warning("scaling down to %d replicas (queue %.1f rows per replica)", wanted, mean)
            self._drain(slot)

    def _drain(self, slot: Replica) -> None:
        slot.start_at = None
        if slot.process is None or slot.process.poll() is not None:
            self.slots.remove(slot)  # not running (a pending restart): nothing to drain
            return
        slot.is_draining = True
        with contextlib.suppress(ProcessLookupError):
            slot.process.send_signal(signal.SIGTERM)

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.start_at is not None and slot.start_at <= now and not self.stopping:
                slot.start_at = None
                self._start(slot)

    def _start(self, slot: Replica) -> None:
        slot.process = subprocess.Popen(
            self.command(slot.index),
            env={**os.environ, **self.env},
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
            preexec_fn=_replica_preexec,  # safe: the supervisor starts no threads
        )
        log.info("replica %d started (pid %d)", slot.index, slot.process.pid)

    def _signal_all(self, sig: int, *, skip_draining: bool = False) -> None:
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is not None:
                continue
            if skip_draining and slot.is_draining:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            if sig == signal.SIGKILL:
                process.wait()


def _how(code: int) -> str:
    """How a replica ended, from its return code (uvicorn re-raises the SIGTERM it drained
    on, so a drained replica ends by ``signal SIGTERM``)."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _replica_preexec() -> None:
    """In the replica, before exec: signals unblocked again (the mask is inherited), and on
    Linux a SIGTERM when the supervisor dies, so no replica outlives it unsupervised."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

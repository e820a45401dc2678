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

How a replica is started, signalled and checked is a :class:`ReplicaLauncher`: child
processes here (:class:`LocalProcesses`), or Ray actors each running the same process on a
cluster node (:mod:`modelpilot.serving.ray_replicas`, ``--executor ray``); the loop is one.

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
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modelpilot.serving.autoscale import Autoscaler

log = logging.getLogger(__name__)

# Exit codes of modelpilot errors raised while a replica starts (bad input, a missing model,
# a conflict, a refused token, a corrupt artifact): every restart would fail the same way.
CONFIG_EXIT_CODES = frozenset({2, 3, 4, 5, 7})
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_SIGNALS = (*_STOP_SIGNALS, signal.SIGCHLD)


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


class ReplicaProcess(Protocol):
    """One running replica as the supervisor sees it: a process here, or a Ray actor's.

    ``name`` says which in logs ("pid 4242"); ``node_ip`` is the address of the machine it
    runs on (None: this one), where its own port (``--replica-ports``) is read.
    """

    name: str
    node_ip: str | None

    def poll(self) -> int | None:
        """None while it runs; its return code once it has ended (negative: the signal)."""
        ...

    def send_signal(self, sig: int) -> None:
        """Deliver ``sig`` to the replica (SIGTERM: drain and stop); no error if it ended."""
        ...

    def kill(self) -> None:
        """Stop it at once and wait until it is gone (the supervisor itself failed)."""
        ...


class ReplicaLauncher(Protocol):
    """How the supervisor starts replicas: :class:`LocalProcesses` (child processes) or
    :class:`~modelpilot.serving.ray_replicas.RayActors` (one actor per replica).

    ``poll_s``: how often the supervisor must :meth:`ReplicaProcess.poll` to notice a
    replica that ended; None when SIGCHLD says so (children of this process).
    ``open`` runs once in :meth:`Supervisor.run` before the first start (a connection),
    ``close`` once after the last replica ended.
    """

    poll_s: float | None

    def open(self) -> None: ...

    def start(self, index: int) -> ReplicaProcess: ...

    def close(self) -> None: ...


class LocalProcess:
    """A replica that is a child process of the supervisor."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.name = f"pid {process.pid}"
        self.node_ip: str | None = None

    def poll(self) -> int | None:
        return self.process.poll()

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
        self.process.wait()


class LocalProcesses:
    """Replicas as child processes of this one: ``command(index)`` is replica ``index``'s
    argument list, ``env`` is added to this process's environment."""

    poll_s: float | None = None  # a child that ends raises SIGCHLD

    def __init__(
        self, command: Callable[[int], list[str]], *, env: Mapping[str, str] | None = None
    ) -> None:
        self.command = command
        self.env = dict(env or {})

    def open(self) -> None:
        pass

    def start(self, index: int) -> LocalProcess:
        return LocalProcess(
            subprocess.Popen(
                self.command(index),
                env={**os.environ, **self.env},
                start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
                preexec_fn=replica_preexec,  # safe: the supervisor starts no threads
            )
        )

    def close(self) -> None:
        pass


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
    process: ReplicaProcess | None = None
    restarts: int = 0
    start_at: float | None = None  # a pending (delayed) restart
    is_draining: bool = False  # removed by a scale-down: SIGTERM sent, not restarted


class ReplicasFailed(Exception):
    """A replica kept dying (or failed to start for a reason a restart cannot fix)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Supervisor:
    """Starts ``replicas`` replicas with ``launcher``, keeps them running, stops them together.

    :meth:`run` blocks until every replica has exited; signals are taken synchronously
    (``sigtimedwait``), so no handler runs between two statements.

    With an ``autoscaler``, ``replicas`` is the starting count, and every ``rule.poll_s``
    the supervisor reads ``queue_depth(index, node_ip)`` of each serving replica (None:
    unreadable, left out), feeds the mean to the autoscaler, starts a replica at the lowest
    free index or drains the highest one (SIGTERM once: it answers what it queued, then exits).
    """

    def __init__(
        self,
        launcher: ReplicaLauncher,
        replicas: int,
        *,
        max_restarts: int = 5,
        window_s: float = 60.0,
        autoscaler: Autoscaler | None = None,
        queue_depth: Callable[[int, str | None], float | None] | None = None,
    ) -> None:
        self.launcher = launcher
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.slots = [self._slot(i) for i in range(replicas)]
        self.stopping = False
        self.failure: ReplicasFailed | None = None
        self.autoscaler = autoscaler
        self.queue_depth = queue_depth
        self.next_poll = 0.0

    def _slot(self, index: int) -> Replica:
        return Replica(index, RestartBudget(max_restarts=self.max_restarts, window_s=self.window_s))

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (then drain) or until replicas keep dying (raises)."""
        self.launcher.open()  # before the mask: processes it may start keep their signals
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        old_handlers = {sig: signal.signal(sig, _to_main_thread) for sig in _STOP_SIGNALS}
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
            for sig, handler in old_handlers.items():  # first: a pending one must not loop
                signal.signal(sig, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            self.launcher.close()
        if self.failure is not None:
            raise self.failure

    def _wait_event(self) -> None:
        due = [s.start_at for s in self.slots if s.start_at is not None]
        if self.autoscaler is not None and not self.stopping:
            due.append(self.next_poll)
        if self.launcher.poll_s is not None:
            due.append(time.monotonic() + self.launcher.poll_s)
        timeout = max(0.0, min(due) - time.monotonic()) if due else 5.0
        info = signal.sigtimedwait(_SIGNALS, timeout)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            name = signal.Signals(info.si_signo).name
            log.warning("%s received: replicas drain and stop", name)
            self._stop()  # a second signal forwards again: uvicorn then force-quits

    def _reap(self) -> None:
        for slot in list(self.slots):  # a drained replica's slot is removed
            process = slot.process
            code = None if process is None else process.poll()
            if process is None or code is None:
                continue
            slot.process = None
            if slot.is_draining:
                self.slots.remove(slot)
                log.warning(
                    "replica %d (%s) drained and stopped (%s); %d serving",
                    slot.index,
                    process.name,
                    _how(code),
                    len(self._serving()),
                )
            elif not self.stopping:
                self._replace(slot, process.name, code)

    def _replace(self, slot: Replica, name: str, code: int) -> None:
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
            "replica %d (%s) died (%s); restart %d in %.2f s",
            slot.index,
            name,
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
        read = [self.queue_depth(s.index, s.process.node_ip) for s in serving if s.process]
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
        slot.process.send_signal(signal.SIGTERM)

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.start_at is not None and slot.start_at <= now and not self.stopping:
                slot.start_at = None
                self._start(slot)

    def _start(self, slot: Replica) -> None:
        slot.process = self.launcher.start(slot.index)
        log.info("replica %d started (%s)", slot.index, slot.process.name)

    def _signal_all(self, sig: int, *, skip_draining: bool = False) -> None:
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is not None:
                continue
            if skip_draining and slot.is_draining:
                continue
            if sig == signal.SIGKILL:
                process.kill()
            else:
                process.send_signal(sig)


def _how(code: int) -> str:
    """How a replica ended, from its return code (uvicorn re-raises the SIGTERM it drained
    on, so a drained replica ends by ``signal SIGTERM``)."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _to_main_thread(signum: int, frame: object) -> None:
    """A stop signal that reached another thread (one a library such as Ray started before
    the mask was set, with signals unblocked) runs this handler in the main thread: sent
    again to that thread, where it is blocked, it waits for the next ``sigtimedwait``."""
    signal.pthread_kill(threading.main_thread().ident or 0, signum)


def replica_preexec() -> None:
    """In the replica, before exec: signals unblocked again (the mask is inherited), and on
    Linux a SIGTERM when the supervisor dies, so no replica outlives it unsupervised."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

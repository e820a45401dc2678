"""Data-plane replicas on a Ray cluster: ``modelpilot serve TARGET --executor ray --replicas N``.

The supervisor of :mod:`modelpilot.serving.replicas` runs unchanged in the calling process;
only how a replica starts differs. Each replica is one Ray actor (one CPU reserved, spread over
the nodes) that starts the very process a local replica is, ``modelpilot serve ...
--replica-index i``, on its node: modelpilot's own HTTP path, no Ray Serve proxy in front
(``benchmarks/ray_serve_proxy.py`` measured the proxy; docs/scale-out.md). Replicas on one
node share the port with ``SO_REUSEPORT`` as local ones do; each follows the same
deployments from the control plane and writes the same prediction log.

The actor holds the process: its ``poll`` is the supervisor's liveness check (the actor
dying, a node lost, counts as the replica dying), ``send_signal`` forwards SIGTERM (drain).
The replica gets SIGKILL from the kernel when its actor's worker dies (``PR_SET_PDEATHSIG``),
so its ports are free before a replacement binds them; with ``--durability sync`` nothing
it acknowledged is lost (its write-ahead file is recovered by the next reader), as with a
local replica killed outright. A replica's output goes to a file on its node; the tail is
logged here when it ends with an error.

Trust and configuration are decided by each replica exactly as by a local one (it reads the
version's recorded types from the same store); the supervisor passes the ``MODELPILOT_*`` and
``AWS_*`` variables of its environment (the store, the server, the token, the bucket) to the
actors, so Ray's task specifications carry them: the cluster must be as trusted as the
machine the supervisor runs on.

>>> forwarded_environment({"MODELPILOT_HOME": "/h", "HOME": "/root", "AWS_REGION": "eu"})
{'MODELPILOT_HOME': '/h', 'AWS_REGION': 'eu'}
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from modelpilot.ray_cluster import connect, driver_import_path

log = logging.getLogger(__name__)

OPTION = "--executor ray"
FORWARDED_PREFIXES = ("MODELPILOT_", "AWS_")
TAIL_CHARS = 2_000


def forwarded_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` a replica on another machine needs (store, server,
    token, bucket): those named ``MODELPILOT_*`` and ``AWS_*``."""
    return {k: v for k, v in environ.items() if k.startswith(FORWARDED_PREFIXES)}


def _kill_with_parent() -> None:
    """In the replica, before exec: SIGKILL when the actor's worker dies (Linux), so a dead
    actor leaves no replica holding its ports."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class ReplicaActor:
    """The Ray actor of one replica: starts ``modelpilot serve <arguments>`` on its node and
    answers for it. Runs on the cluster; every method returns at once."""

    def __init__(self, arguments: list[str], env: dict[str, str]) -> None:
        self.arguments = arguments
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.output: Path | None = None

    def start(self) -> tuple[str, int]:
        """Start the replica process; its node's address and process id."""
        import ray

        handle, name = tempfile.mkstemp(prefix="modelpilot-replica-", suffix=".log")
        self.output = Path(name)
        with os.fdopen(handle, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelpilot.cli.main", "serve", *self.arguments],
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_kill_with_parent,
            )
        return ray.util.get_node_ip_address(), self.process.pid  # type: ignore[no-untyped-call]

    def poll(self) -> int | None:
        """None while the replica runs, else its return code."""
        return None if self.process is None else self.process.poll()

    def send_signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def output_tail(self) -> str:
        """The last characters the replica printed (why it failed)."""
        if self.output is None or not self.output.exists():
            return ""
        text = self.output.read_text(errors="replace")
        self.output.unlink()
        return text[-TAIL_CHARS:]


class RayReplica:
    """One replica as the supervisor sees it (a :class:`~modelpilot.serving.replicas.
    ReplicaProcess`): its actor, polled without blocking (one call in flight at a time)."""

    # How long a replica may wait for Ray to place its actor before the supervisor says why
    # (a cluster with no free CPU keeps it pending, silently, for as long as that lasts).
    placement_warning_s: float = 30.0

    def __init__(self, ray: ModuleType, actor: Any, index: int) -> None:
        self.ray = ray
        self.actor = actor
        self.index = index
        self.created = time.monotonic()
        self.warned = False
        self.name = f"Ray actor {actor._actor_id.hex()[:12]}, not placed yet"
        self.node_ip: str | None = None
        self.code: int | None = None
        self.starting: Any = actor.start.remote()
        self.pending: Any = None

    def poll(self) -> int | None:
        if self.code is None and self._is_started():
            self.pending = self.pending or self.actor.poll.remote()
            ready, _ = self.ray.wait([self.pending], timeout=0)
            if ready:
                reply, self.pending = self.pending, None
                self._check(reply)
        return self.code

    def _is_started(self) -> bool:
        if self.starting is None:
            return True
        ready, _ = self.ray.wait([self.starting], timeout=0)
        if not ready:
            self._warn_if_unplaced()
            return False
        starting, self.starting = self.starting, None
        try:
            self.node_ip, pid = self.ray.get(starting)
        except self.ray.exceptions.RayError as exc:
            self._ended(-signal.SIGKILL, f"its actor failed: {str(exc)[:500]}")
            return False
        self.name = f"pid {pid} on {self.node_ip}, {self.name.split(',')[0]}"
        log.info("replica %d started (%s)", self.index, self.name)
        return True

    def _warn_if_unplaced(self) -> None:
        waited = time.monotonic() - self.created
        if self.warned or waited < self.placement_warning_s:
            return
        self.warned = True
        free = self.ray.available_resources().get("CPU", 0.0)
        total = self.ray.cluster_resources().get("CPU", 0.0)
        log.warning(
            "replica %d has waited %.0f s for Ray to place it: it needs 1 CPU and the cluster "
            "has %g of %g CPUs free. It starts once one is free; add a node (or CPUs), or "
            "lower --replicas (or the autoscaling maximum).",
            self.index,
            waited,
            free,
            total,
        )

    def _check(self, reply: Any) -> None:
        try:
            code = self.ray.get(reply)
        except self.ray.exceptions.RayError as exc:  # the actor died (or its node)
            self._ended(-signal.SIGKILL, f"its actor died: {type(exc).__name__}")
            return
        if code is not None:
            ok = code in (0, -signal.SIGTERM)
            self._ended(code, None if ok else self._tail())

    def _tail(self) -> str:
        try:
            tail = self.ray.get(self.actor.output_tail.remote(), timeout=10)
        except self.ray.exceptions.RayError:
            return "its output could not be read"
        return f"its last output:\n{tail}"

    def _ended(self, code: int, why: str | None) -> None:
        if why:
            log.error("replica %d (%s) ended: %s", self.index, self.name, why)
        self.code = code
        self.ray.kill(self.actor, no_restart=True)

    def send_signal(self, sig: int) -> None:
        if self.code is not None:
            return
        if self.starting is not None:  # not running yet: nothing to drain
            self.kill()
            return
        with contextlib.suppress(self.ray.exceptions.RayError):
            self.ray.get(self.actor.send_signal.remote(sig), timeout=10)

    def kill(self) -> None:
        if self.code is None:
            self._ended(-signal.SIGKILL, None)


class RayActors:
    """Replicas as Ray actors (a :class:`~modelpilot.serving.replicas.ReplicaLauncher`):
    ``arguments(index)`` is replica ``index``'s ``modelpilot serve`` arguments, ``env``
    what its process gets on top of its node's environment; ``address`` the cluster
    (None: a new local one of ``num_cpus`` CPUs)."""

    poll_s: float | None = 0.25  # a dead actor raises no SIGCHLD here: ask each one

    def __init__(
        self,
        arguments: Callable[[int], list[str]],
        *,
        env: Mapping[str, str],
        address: str | None,
        num_cpus: int,
    ) -> None:
        self.arguments = arguments
        self.env = dict(env)
        self.address = address
        self.num_cpus = num_cpus
        self.ray: ModuleType | None = None
        self.actor_class: Any = None

    def open(self) -> None:
        ray = connect(self.address, num_cpus=self.num_cpus, option=OPTION)
        self.ray = ray
        self.actor_class = ray.remote(ReplicaActor).options(
            num_cpus=1,  # the replica's process: one core, as a local replica
            max_restarts=0,  # the supervisor replaces it, with its backoff and budget
            scheduling_strategy="SPREAD",
            runtime_env={"env_vars": driver_import_path()},
        )

    def start(self, index: int) -> RayReplica:
        assert self.ray is not None, "open() first"
        actor = self.actor_class.remote(self.arguments(index), self.env)
        return RayReplica(self.ray, actor, index)

    def close(self) -> None:
        pass


__all__ = ["RayActors", "RayReplica", "ReplicaActor", "forwarded_environment"]

"""Connecting to Ray: the one place that imports ``ray`` and starts or joins a cluster.

Pipelines (``--executor ray``), batch scoring (``modelpilot score --executor ray``) and
tuning (``mp.tune(..., executor="ray")``) all connect here, so they share one rule: a Ray
already initialised in this process (``ray.init(...)`` by the caller, a test fixture) is used
as it is; else ``address`` (``--ray-address``, ``MODELPILOT_RAY_ADDRESS``) is joined; else a
local cluster starts (``num_cpus`` CPUs, no dashboard, worker logs kept out of this
process's output) and lives until the process exits.

An address nothing listens on is refused at once by a TCP probe of ``host:port`` (``ray.init``
would retry it for minutes), so a wrong address is a bounded wait (5 s at most).

>>> _host_port("ray://head:10001"), _host_port("auto")
(('head', 10001), None)
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from types import ModuleType

from modelpilot.config import Settings
from modelpilot.errors import InvalidInput, Unavailable

PROBE_TIMEOUT_S = 5.0
LOCAL_START_ATTEMPTS = 3


def ray_missing(option: str) -> str:
    """What to say when ``option`` needs Ray and it is not installed."""
    return f"{option} needs Ray: pip install 'modelpilot[ray]'"


def import_ray(option: str = "--executor ray") -> ModuleType:
    """The ``ray`` module; InvalidInput saying how to install it when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise InvalidInput(
            f"{ray_missing(option)} (import failed: {exc}).", field="executor"
        ) from exc
    return ray


def connect(
    address: str | None, *, num_cpus: int = 2, option: str = "--executor ray"
) -> ModuleType:
    """Ray, initialised: as it already is, at ``address``, or as a new local cluster.
    Unavailable (exit 6) naming the address when it cannot be reached."""
    ray = import_ray(option)
    if ray.is_initialized():
        return ray
    try:
        if address:
            _probe(address)
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            start_local(ray, num_cpus)
    except Exception as exc:  # Ray raises bare Exception too ("timed out during startup")
        where = f"at {address}" if address else "(a local one)"
        raise Unavailable(
            f"Cannot start or reach the Ray cluster {where}: {type(exc).__name__}: "
            f"{str(exc)[:300]}. Check --ray-address (MODELPILOT_RAY_ADDRESS), e.g. "
            "ray://host:10001 or host:6379 of `ray start --head`, or leave it out for a "
            f"local cluster.{_token_hint(address)}"
        ) from exc
    return ray


def start_local(ray: ModuleType, num_cpus: int) -> None:
    """Start a local Ray cluster in this process, trying again when its node was slow to start.

    Ray waits a fixed 30 s for its raylet to register (``ray/_private/node.py``) and then
    raises "The current node timed out during startup": on a loaded two-core machine (two
    test workers each starting a cluster while other tests run) that happened to all 15 Ray
    tests of one worker. A second or third start, after shutting the first down, succeeds.
    """
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            return
        except Exception as exc:
            if "timed out during startup" not in str(exc) or attempt == LOCAL_START_ATTEMPTS:
                raise
            ray.shutdown()


def driver_import_path() -> dict[str, str]:
    """Ray ``runtime_env`` variables that give a worker this process's import path: the
    code a task or actor calls by reference (a train function, a python_function model) is
    then importable there as here, as a ``spawn``-ed process would find it. On a remote
    cluster the folders must exist on the nodes too (a shared folder or the same image)."""
    return {"PYTHONPATH": os.pathsep.join(driver_folders())}


def driver_folders() -> list[str]:
    """This process's import folders (``sys.path`` entries that are folders), in order.

    An actor that extends its own ``sys.path`` with them (:func:`use_folders`) finds the same
    code without a ``runtime_env``, which costs a dedicated worker started through Ray's agent
    (about 1 s an actor on 2 cores, measured)."""
    return list(dict.fromkeys(p for p in sys.path if p and os.path.isdir(p)))


def use_folders(folders: list[str]) -> None:
    """Put ``folders`` (a driver's :func:`driver_folders`) ahead of this worker's path."""
    sys.path[:0] = [folder for folder in folders if folder not in sys.path]


def refuse_unshared_store(url: str) -> None:
    """On a Ray node: refuse, naming the fix, a SQLite store whose file this machine does
    not have (SQLite would create an empty one here, and the work would be recorded in it)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:" and not Path(database).is_file():
        raise InvalidInput(
            f"The store's SQLite file {database} is not on this machine "
            f"({socket.gethostname()}): work on the other machines of a Ray cluster needs a "
            "store every node reaches, PostgreSQL (MODELPILOT_STORE_URI=postgresql://...).",
            field="store",
        )


def refuse_unshared_artifacts(settings: Settings) -> None:
    """On a Ray node: refuse, naming the fix, a local artifact folder this machine does not
    have (a blob would otherwise be reported missing, which reads like a deleted model).
    The folder's parent is enough: a home where nothing was logged yet has no folder."""
    root = settings.resolved_artifact_root()
    if not settings.artifacts_uri and not root.is_dir() and not root.parent.is_dir():
        raise InvalidInput(
            f"A Ray worker on {socket.gethostname()} cannot see the artifact folder {root}: "
            "on a cluster of several machines keep artifacts in an S3-compatible bucket "
            "(MODELPILOT_ARTIFACTS_URI=s3://bucket/prefix, credentials on every node) or in a "
            "folder every node mounts at the same path (MODELPILOT_ARTIFACT_ROOT).",
            field="artifacts",
        )


def refuse_unshared_state(settings: Settings) -> None:
    """On a Ray node: both checks below for a worker that reads the store and blobs
    directly (not through ``MODELPILOT_SERVER_URI``)."""
    if settings.server_uri:
        return
    refuse_unshared_store(settings.resolved_store_uri())
    refuse_unshared_artifacts(settings)


def _token_hint(address: str | None) -> str:
    """A hint for a cluster with token authentication: Ray joins an explicit address without
    its token unless RAY_AUTH_MODE=token is set (by design, ray/_private/worker.py), and the
    failure reads only "Failed to connect"."""
    if not address or os.environ.get("RAY_AUTH_MODE"):
        return ""
    return (
        " If the cluster uses token authentication (`ray start` does when ~/.ray/auth_token "
        "exists), set RAY_AUTH_MODE=token (and RAY_AUTH_TOKEN, or that file on this machine)."
    )


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of an address; None for ``auto`` and addresses without a port."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if sep and host and port.isdigit():
        return host.strip("[]"), int(port)
    return None


def _probe(address: str) -> None:
    """Refuse at once an address nothing listens on (OSError)."""
    where = _host_port(address)
    if where is not None:
        with socket.create_connection(where, timeout=PROBE_TIMEOUT_S):
            pass


__all__ = [
    "PROBE_TIMEOUT_S",
    "connect",
    "driver_folders",
    "driver_import_path",
    "import_ray",
    "ray_missing",
    "use_folders",
]

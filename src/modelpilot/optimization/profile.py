"""``modelpilot profile``: what a version costs where it would run.

Two targets, each measured in fresh processes so nothing already imported or cached helps:

- ``edge``: one core (``os.sched_setaffinity``, one OpenMP thread) and a memory cap
  (``RLIMIT_AS``) in a fresh interpreter that loads the version and predicts one row at a
  time in process. Cold start is the wall time from starting that interpreter to its first
  answer; memory needed is its peak resident size.
- ``cloud``: ``modelpilot serve`` on 127.0.0.1 with adaptive batching on every core this
  process may use, sent a bounded number of one-row ``/predict`` requests (after a warm-up)
  over keep-alive connections by a minimal HTTP/1.1 client (which shares those cores: the
  figure is a floor). Memory needed is the server's peak resident size.

Cost per million predictions is ``cores x core-hour price x hours per million`` at the
measured throughput. The table is stored as a ``profile`` record on the version, so its model
card shows it.

>>> row = ProfileRow("edge", 1, 1.0, 2.0, 100.0, 1000.0, 0.5)
>>> round(row.cost_per_million(0.05), 6)
0.013889
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.data.protocol import DatasetService
from modelpilot.errors import InvalidInput, ModelpilotError
from modelpilot.models.signature import Signature
from modelpilot.registry import ModelVersion
from modelpilot.registry.protocol import RegistryService

PROFILE_TARGETS = ("edge", "cloud")
_EDGE_CALLS = 200
_CLOUD_REQUESTS = 4000
_CLOUD_WARMUP = 400  # first requests, not timed: connections, the runtime's first batches
_CONCURRENCY = 16
_CLOUD_DEADLINE_S = 300.0  # for all the requests of one phase: a server that hangs fails it
_READY_DEADLINE_S = 120.0


@dataclass(frozen=True)
class ProfileRow:
    """One target's figures: latency at batch 1 (ms), peak memory (MB), throughput (req/s),
    cold start (s, edge only) and what it failed with, if it did."""

    target: str
    cores: int
    p50_ms: float | None
    p99_ms: float | None
    memory_mb: float | None
    req_per_s: float | None
    cold_start_s: float | None = None
    error: str | None = None

    def cost_per_million(self, core_hour_price: float) -> float | None:
        """Price of a million predictions at the measured throughput."""
        if not self.req_per_s:
            return None
        return self.cores * core_hour_price * (1e6 / self.req_per_s) / 3600.0


@dataclass(frozen=True)
class ProfileTable:
    """The profile of one version: a row per target and the price it was costed at."""

    ref: str
    core_hour_price: float
    rows: list[ProfileRow] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per target, with ``cost_per_million``."""
        return pd.DataFrame(self._flat())

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``profile`` record; rows carry their ``cost_per_million``)."""
        return {"ref": self.ref, "core_hour_price": self.core_hour_price, "rows": self._flat()}

    def _flat(self) -> list[dict[str, Any]]:
        return [
            {**asdict(r), "cost_per_million": r.cost_per_million(self.core_hour_price)}
            for r in self.rows
        ]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileTable:
        """Inverse of :meth:`to_dict`.

        >>> table = ProfileTable("churn/1", 0.05, [ProfileRow("cloud", 2, 1.0, 3.0, 200.0, 900.0)])
        >>> ProfileTable.from_dict(table.to_dict()) == table
        True
        """
        names = {f.name for f in fields(ProfileRow)}
        rows = [ProfileRow(**{k: v for k, v in r.items() if k in names}) for r in data["rows"]]
        return cls(str(data["ref"]), float(data["core_hour_price"]), rows)


def parse_profile_targets(target: str) -> list[str]:
    """``edge``, ``cloud`` or both (``edge,cloud``).

    >>> parse_profile_targets("edge,cloud")
    ['edge', 'cloud']
    >>> parse_profile_targets("phone")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Unknown profile target 'phone'. Available: edge, cloud.
    """
    names = [t.strip() for t in target.split(",") if t.strip()]
    for name in names or [""]:
        if name not in PROFILE_TARGETS:
            raise InvalidInput(
                f"Unknown profile target {name!r}. Available: {', '.join(PROFILE_TARGETS)}.",
                field="target",
            )
    return list(dict.fromkeys(names))


def profile_edge(
    ref: str,
    rows: pd.DataFrame,
    env: Mapping[str, str],
    *,
    memory_mb: int,
    calls: int = _EDGE_CALLS,
) -> ProfileRow:
    """Batch-1 latency, peak memory and cold start on one core under a memory cap."""
    cpu = sorted(os.sched_getaffinity(0))[-1]
    with tempfile.TemporaryDirectory(prefix="modelpilot-profile-") as tmp:
        data = Path(tmp) / "rows.json"
        data.write_text(rows.head(64).to_json(orient="records"))
        command = [sys.executable, "-m", "modelpilot.profile_worker", ref, str(data)]
        command += [str(calls), str(memory_mb), str(cpu)]
        started = time.perf_counter()
        process = subprocess.run(
            command, capture_output=True, text=True, env=_child_env(env), timeout=600, check=False
        )
    lines = process.stdout.splitlines()
    if process.returncode != 0 or len(lines) < 2:
        why = (process.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return ProfileRow("edge", 1, None, None, None, None, error=f"failed under the cap: {why}")
    first_answer = json.loads(lines[0])["first_answer_s"]
    result = json.loads(lines[-1])
    timings = np.asarray(result["timings_ms"])
    p50, p99 = (float(v) for v in np.percentile(timings, [50, 99]))
    cold = first_answer - started  # perf_counter is the system's monotonic clock on Linux
    return ProfileRow("edge", 1, p50, p99, result["peak_mb"], 1000.0 / p50, cold)


def profile_cloud(
    ref: str,
    rows: pd.DataFrame,
    env: Mapping[str, str],
    *,
    requests: int = _CLOUD_REQUESTS,
    concurrency: int = _CONCURRENCY,
) -> ProfileRow:
    """Requests per second and latency of ``modelpilot serve`` with adaptive batching."""
    port = _free_port()
    command = [sys.executable, "-m", "modelpilot.cli.main", "serve", ref, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-log"],
        env=_child_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server)
        records = json.loads(rows.head(64).to_json(orient="records"))
        bodies = [json.dumps([record]).encode() for record in records]
        name = ref.split("/")[0].split("@")[0]
        timings, wall_s = asyncio.run(
            _load(port, f"/predict/{name}", bodies, requests, concurrency)
        )
        peak = _peak_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
    p50, p99 = (float(v) for v in np.percentile(timings, [50, 99]))
    cores = len(os.sched_getaffinity(0))
    return ProfileRow("cloud", cores, p50, p99, peak, requests / wall_s)


_STEPS = {
    "edge": "Edge: {ref} on one pinned core under the memory cap, cold start included",
    "cloud": "Cloud: {ref} behind modelpilot serve with adaptive batching",
}


def profile_version(
    registry: RegistryService,
    datasets: DatasetService,
    ref: str,
    targets: str,
    env: Mapping[str, str],
    *,
    core_hour_price: float = 0.05,
    memory_mb: int = 4096,
    data: pd.DataFrame | str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProfileTable:
    """Profile ``ref`` on each target and store the table as a ``profile`` record on it.

    ``env`` holds the ``MODELPILOT_*`` variables that make a child process open this
    workspace; ``data`` (default: the version's training dataset) gives the request rows.
    ``progress`` is told each target as its measurement starts (the CLI's status line).
    """
    names = parse_profile_targets(targets)
    if core_hour_price < 0 or memory_mb < 64:
        raise InvalidInput(
            f"--core-hour-price must be >= 0 and --memory-mb >= 64; got {core_hour_price} and "
            f"{memory_mb}.",
            field="core_hour_price" if core_hour_price < 0 else "memory_mb",
        )
    version = registry.get_version(ref)
    rows = _rows(datasets, version, data)
    exact = version.ref
    measured = []
    for name in names:
        if progress is not None:
            progress(_STEPS[name].format(ref=exact))
        if name == "edge":
            measured.append(profile_edge(exact, rows, env, memory_mb=memory_mb))
        else:
            measured.append(profile_cloud(exact, rows, env))
    table = ProfileTable(exact, core_hour_price, measured)
    registry.add_record(exact, "profile", table.to_dict())
    return table


def _rows(
    datasets: DatasetService, version: ModelVersion, data: pd.DataFrame | str | None
) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, str):
        frame = datasets.load_dataset(data)
    else:
        linked = version.datasets_with_role("training")
        if not linked:
            raise InvalidInput(
                f"No rows to send {version.ref}: it has no linked training dataset. Pass "
                "--data name@version.",
                field="data",
            )
        frame = datasets.load_dataset(linked[0].ref)
    signature = Signature.from_dict(version.signature)
    if signature.input_kind != "columns":
        raise InvalidInput(
            f"{version.ref} takes a tensor; modelpilot profile sends table rows (named "
            "columns) to the model.",
            field="ref",
        )
    columns = signature.column_names
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The data lacks {version.ref}'s input column(s) {', '.join(map(repr, missing))}.",
            field="data",
        )
    return frame[columns].head(64).reset_index(drop=True)


def _child_env(env: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, server: subprocess.Popen[str]) -> None:
    """Poll readiness (bounded); a server that exits says why."""
    import httpx

    deadline = time.monotonic() + _READY_DEADLINE_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            why = server.stderr.read().strip().splitlines()[-1:] if server.stderr else []
            raise ModelpilotError(f"modelpilot serve exited with {server.returncode}: {why}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a starting process, bounded by the deadline
    raise ModelpilotError(f"modelpilot serve was not ready in {_READY_DEADLINE_S:.0f} s.")


async def _load(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    requests: int,
    concurrency: int,
    warmup: int = _CLOUD_WARMUP,
) -> tuple[np.ndarray, float]:
    """``warmup`` then ``requests`` one-row POSTs over ``concurrency`` keep-alive connections;
    the timed requests' latencies (ms) and wall time (s).

    Hand-written rather than httpx: the client shares the server's cores, and httpx's
    ~0.3 ms of Python a request capped what this measured at ~600 req/s for a server that
    answers tens of thousands (benchmarks/serving.py); this costs a few tens of microseconds.
    """
    messages = [
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
        for body in bodies
    ]
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    timings: list[float] = []

    async def worker(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remaining: Any, timed: bool
    ) -> None:
        for i in remaining:
            start = time.perf_counter()
            writer.write(messages[i % len(messages)])
            try:
                status, body = await _response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise ModelpilotError(
                    f"The server closed a connection instead of answering ({exc!r})."
                ) from exc
            if status != 200:
                raise ModelpilotError(f"The server answered {status}: {body[:200]!r}")
            if timed:
                timings.append((time.perf_counter() - start) * 1000.0)

    async def phase(count: int, timed: bool) -> float:
        remaining = iter(range(count))  # shared: each request taken by one connection
        started = time.perf_counter()
        tasks = [asyncio.create_task(worker(r, w, remaining, timed)) for r, w in connections]
        try:
            async with asyncio.timeout(_CLOUD_DEADLINE_S):
                await asyncio.gather(*tasks)
        except TimeoutError as exc:
            raise ModelpilotError(
                f"The server did not answer {count} requests within {_CLOUD_DEADLINE_S:.0f} s."
            ) from exc
        finally:  # one connection's error stops the others before the sockets close
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return time.perf_counter() - started

    try:
        for _ in range(concurrency):
            connections.append(await asyncio.open_connection("127.0.0.1", port))
        await phase(warmup, timed=False)
        wall = await phase(requests, timed=True)
    finally:
        for _, writer in connections:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, w in connections), return_exceptions=True)
    return np.asarray(timings), wall


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a content-length (what the data plane sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, await reader.readexactly(int(value))
    raise ModelpilotError(f"The server answered {status} without a content-length.")


def _peak_mb(pid: int) -> float | None:
    """Peak resident size of a running process (Linux ``VmHWM``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


__all__ = [
    "PROFILE_TARGETS",
    "ProfileRow",
    "ProfileTable",
    "parse_profile_targets",
    "profile_cloud",
    "profile_edge",
    "profile_version",
]

"""Helpers for tests that need a real ``modelpilot server`` process on 127.0.0.1.

A server runs as ``python -m modelpilot.cli.main server`` on a free loopback port, on a
SQLite file or a fresh PostgreSQL schema, and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from modelpilot.config import normalise_store_uri
from modelpilot.identity import Role, create_token
from modelpilot.store import Store

POSTGRES_URI = os.environ.get("MODELPILOT_TEST_POSTGRES_URI")


_LIVE_FILES = ("predictions", "modelpilot.db", "modelpilot.db-wal", "modelpilot.db-shm")


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a home (without its prediction log) that a server may be using right now:
    its SQLite WAL/SHM files come and go, so the database is copied with SQLite's backup API
    (a consistent snapshot) and the rest file by file."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_LIVE_FILES))
    if (source / "modelpilot.db").exists():
        with (
            closing(sqlite3.connect(source / "modelpilot.db")) as live,
            closing(sqlite3.connect(target / "modelpilot.db")) as copy,
        ):
            live.backup(copy)
    return target


def _first_ephemeral_port() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux's default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = random.Random()  # its own generator: tests that seed `random` must not pick the same ports
# Ports this process handed out: a port is free until its server binds it, so two draws for
# one server (SeaweedFS takes eight) could both return it; CI saw weed's master and volume
# get the same gRPC port that way ("bind: address already in use").
_HANDED_OUT: set[int] = set()


def free_port(count: int = 1) -> int:
    """A loopback port p with p .. p + count - 1 free now, below the ephemeral range.

    A port the kernel picked (bind to 0) is an ephemeral one, and every outgoing connection
    of the other test worker (PostgreSQL, HTTP clients) draws from that same range, so one
    could take it before the server under test binds it: CI saw a replica fail with
    "Cannot listen" that way. Ports below the range are never handed out by the kernel;
    a random draw from ~12,000 of them keeps two servers of the other worker apart, and a
    port is never handed out twice in one process.
    """
    high = _first_ephemeral_port()
    low = max(1024, high - 12_000)
    for _ in range(200):
        base = _PORTS.randrange(low, high - count)
        block = range(base, base + count)
        if _HANDED_OUT.isdisjoint(block) and all(_can_bind(port) for port in block):
            _HANDED_OUT.update(block)
            return base
    raise RuntimeError(f"no {count} consecutive free loopback ports in {low}-{high}")


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    deadline_s: float = 180,
    route: str = "/v2/health/ready",
) -> None:
    """Poll ``route`` (a data plane's ``/v2/health/ready``) until it answers 200 (bounded by a
    deadline); fail at once when ``process`` has exited."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}{route}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a starting process; bounded by the deadline
    raise RuntimeError("server not ready in time")


@dataclass
class RunningServer:
    """A ``modelpilot server`` process and the store it runs on."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    store_uri: str
    home: Path

    stderr_path: Path
    stderr_offset: int = 0
    stderr: str = ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process, wait for it and keep what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=60)
        self.stderr = self.stderr_text()
        return self.process.returncode

    def stderr_text(self) -> str:
        """What this process wrote to stderr so far.

        stderr goes to a file, not a pipe: a pipe nobody reads fills at 64 KiB and the server
        then blocks on its next log line (a fuzzer's logged tracebacks hung it that way)."""
        with self.stderr_path.open("rb") as log:
            log.seek(self.stderr_offset)
            return log.read().decode(errors="replace")


def start_server(
    home: Path,
    store_uri: str,
    *,
    auth: bool = True,
    port: int | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> RunningServer:
    """Start a server (its blobs in ``home/artifacts``; ``env`` adds settings such as
    ``MODELPILOT_MAX_UPLOAD_BYTES``, ``args`` options such as ``--agent``) and return once
    ``/health`` answers."""
    port = port or free_port()
    command = [sys.executable, "-m", "modelpilot.cli.main", "server", "--port", str(port)]
    command += ["--store-uri", store_uri, *args]
    if not auth:
        command.append("--no-auth")
    full_env = {**os.environ, "MODELPILOT_HOME": str(home), **(env or {})}
    full_env.pop("MODELPILOT_SERVER_URI", None)
    home.mkdir(parents=True, exist_ok=True)
    stderr_path = home / f"server-{port}.stderr"
    with stderr_path.open("ab") as log:
        offset = log.tell()
        process = subprocess.Popen(command, env=full_env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    server = RunningServer(process, url, port, store_uri, home, stderr_path, offset)
    wait_healthy(server)
    return server


def wait_healthy(server: RunningServer, deadline_s: float = 180) -> None:
    """Poll /health until it answers 200 (bounded by a deadline)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.stop()  # collects what it wrote to stderr
            raise RuntimeError(f"server exited with {code}: {server.stderr}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a starting process; bounded by the deadline
    raise RuntimeError("server not healthy in time")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A store URI in a fresh PostgreSQL schema, dropped afterwards."""
    assert POSTGRES_URI is not None
    base = normalise_store_uri(POSTGRES_URI)
    schema = f"mp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def server_on(backend: str, home: Path) -> Iterator[RunningServer]:
    """A server on a SQLite file in ``home`` (``backend="sqlite"``) or in a fresh PostgreSQL
    schema (``"postgresql"``), stopped (and the schema dropped) at the end."""
    with ExitStack() as stack:
        if backend == "sqlite":
            uri = f"sqlite:///{home / 'mp.db'}"
        else:
            uri = stack.enter_context(pg_schema())
        running = start_server(home, uri)
        stack.callback(running.stop)
        yield running


class Backends:
    """A test module's stores and servers by backend kind (``sqlite``, ``postgresql``), each
    built on first use and closed with ``stack`` at the module's end."""

    def __init__(self, stack: ExitStack, home: Path) -> None:
        self.stack = stack
        self.home = home
        self._uris: dict[str, str] = {}
        self._servers: dict[str, RunningServer] = {}

    def store_uri(self, kind: str) -> str:
        """The module's store on ``kind`` (a SQLite file, or a fresh PostgreSQL schema)."""
        if kind not in self._uris:
            self._uris[kind] = (
                f"sqlite:///{self.home / f'{uuid.uuid4().hex}.db'}"
                if kind == "sqlite"
                else self.stack.enter_context(pg_schema())
            )
        return self._uris[kind]

    def server(self, kind: str) -> RunningServer:
        """The module's server on the store of ``kind``."""
        if kind not in self._servers:
            server = start_server(self.home / f"server-{kind}", self.store_uri(kind))
            self.stack.callback(server.stop)
            self._servers[kind] = server
        return self._servers[kind]


def make_token(store_uri: str, name: str, role: Role, **options: object) -> str:
    """Create a token directly on the store (as ``modelpilot tokens create`` does)."""
    store = Store.open(store_uri)
    try:
        return create_token(store, name, role, **options).token  # type: ignore[arg-type]
    finally:
        store.close()

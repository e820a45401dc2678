"""Nothing doubled: a request re-sent after its response was lost, or across a server killed
with SIGKILL, is applied once (idempotency keys recorded with the change)."""

from __future__ import annotations

import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from modelpilot.client import HttpTracking
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.errors import Unavailable
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.tracking import points, service
from modelpilot.workspace import Workspace
from mp_server import RunningServer, make_token, pg_schema, start_server

STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class ResponseDropper:
    """A loopback TCP proxy that forwards each request and waits for the server's whole
    response, then closes the client's connection instead of returning it: the first time it
    sees each POST (``drop_first``), or for every request (``drop_all``)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop_first = True
        self.drop_all = False
        self.dropped = 0
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            reader, up_reader = client.makefile("rb"), upstream.makefile("rb")
            while True:
                request = _read_message(reader)
                if request is None:
                    return
                upstream.sendall(request)
                response = _read_message(up_reader)
                if response is None or self._drop(request):
                    return  # closing now: the client never sees the committed answer
                client.sendall(response)

    def _drop(self, request: bytes) -> bool:
        """Drop the first answer to each distinct POST (its line, key and body), after the
        server committed it; a repeat of the same request gets its answer."""
        with self._lock:
            first = request.startswith(b"POST ") and request not in self._seen
            if first:
                self._seen.add(request)
            drop = self.drop_all or (self.drop_first and first)
            self.dropped += drop
        return drop


def _read_message(stream: object) -> bytes | None:
    """One HTTP/1.1 message with a Content-Length body (what httpx and uvicorn send here)."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        if not line:
            return None
        head += line
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return head + (stream.read(length) if length else b"")


@contextmanager
def _served(tmp_path: Path, kind: str) -> Iterator[tuple[str, str, RunningServer]]:
    with ExitStack() as stack:
        uri = (
            f"sqlite:///{tmp_path / 'mp.db'}"
            if kind == "sqlite"
            else stack.enter_context(pg_schema())
        )
        server = start_server(tmp_path, uri)
        stack.callback(lambda: server.stop())
        yield uri, make_token(uri, "idem", Role.EDITOR), server


def _count(uri: str, run_id: str) -> int:
    store = Store.open(uri)
    try:
        return service.count_metric_points(store, run_id)
    finally:
        store.close()


@pytest.mark.parametrize("kind", STORES)
def test_batches_and_runs_whose_response_was_lost_are_applied_once(
    tmp_path: Path, kind: str
) -> None:
    with _served(tmp_path, kind) as (uri, token, server):
        proxy = ResponseDropper(server.port)
        proxy.start()
        ws = Workspace(Settings(home=tmp_path / "client", server_uri=proxy.url, token=token))
        try:
            with ws.start_run("dropped") as run:
                for i in range(3000):
                    ws.log_metric("loss", float(i))
                    if i % 1000 == 999:
                        ws.flush()
            history = ws.get_metric_history(run.id, "loss")
            runs = ws.search_runs("dropped")
        finally:
            ws.close()
            proxy.close()
        assert proxy.dropped >= 4  # the new run and each of at least three batches
        assert [p.step for p in history] == list(range(3000))
        assert _count(uri, run.id) == 3000
        assert list(runs["run_id"]) == [run.id]  # the retried creation made no second run


def test_a_batch_given_up_on_is_resent_under_its_key_and_applied_once(tmp_path: Path) -> None:
    with _served(tmp_path, "sqlite") as (uri, token, server):
        proxy = ResponseDropper(server.port)
        proxy.start()
        proxy.drop_first, proxy.drop_all = False, True
        client = HttpTracking(proxy.url, token=token, retry_for_s=0.2)
        direct = HttpTracking(server.url, token=token)
        try:
            run = direct.create_run("given-up")
            first = [("loss", float(i), i, 1) for i in range(100)]
            with pytest.raises(Unavailable, match="did not answer POST"):
                client.send_checked_metrics(run.id, first)  # committed, answer lost each time
            proxy.drop_all = False
            later = [("loss", float(i), i, 1) for i in range(100, 150)]
            client.send_checked_metrics(run.id, first + later)  # what the SDK's buffer re-sends
        finally:
            client.close()
            direct.close()
            proxy.close()
        assert _count(uri, run.id) == 150


@pytest.mark.parametrize("kind", STORES)
def test_server_killed_mid_logging_and_restarted_loses_and_doubles_nothing(
    tmp_path: Path, kind: str
) -> None:
    with _served(tmp_path, kind) as (uri, token, server):
        client = HttpTracking(server.url, token=token, retry_for_s=60)
        run = client.create_run("killed")
        halfway = threading.Event()
        errors: list[BaseException] = []

        def log() -> None:
            try:
                for batch in range(40):
                    rows = [("loss", 0.5, batch * 250 + i, 1) for i in range(250)]
                    client.send_checked_metrics(run.id, rows)
                    if batch == 10:
                        halfway.set()
            except BaseException as exc:
                errors.append(exc)
                halfway.set()

        sender = threading.Thread(target=log)
        sender.start()
        assert halfway.wait(timeout=120)
        server.stop(signal.SIGKILL)
        restarted = start_server(tmp_path, uri, port=server.port)
        try:
            sender.join(timeout=180)
            history = client.get_metric_history(run.id, "loss")
        finally:
            client.close()
            restarted.stop()
        assert errors == []
        assert [p.step for p in history] == list(range(10_000))


def test_applied_keys_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'mp.db'}")
    try:
        exp = service.get_or_create_experiment(store, "prune")
        run = service.create_run(store, exp)
        old, new = uuid.uuid4().hex, uuid.uuid4().hex
        assert service.log_metric_rows(store, run.id, [("a", 1.0, 0, 1)], batch_key=old)
        assert not service.log_metric_rows(store, run.id, [("a", 1.0, 0, 1)], batch_key=old)
        assert service.log_metric_rows(store, run.id, [("a", 2.0, 1, 2)], batch_key=new)
        assert points.prune_keys(store) == 0  # both are fresh
        assert points.prune_keys(store, now=now_ms() + points.KEY_RETENTION_MS + 1000) == 2
        assert service.count_metric_points(store, run.id) == 2
    finally:
        store.close()

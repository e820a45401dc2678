"""The server restarts while a client is logging: the client retries with backoff and no
point is lost or written twice."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelpilot.client import HttpTracking
from modelpilot.config import Settings
from modelpilot.errors import Unavailable
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.tracking import service
from modelpilot.workspace import Workspace
from mp_server import make_token, start_server


def test_points_buffered_while_the_server_is_down_arrive_once_after_restart(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mp.db'}"
    first = start_server(tmp_path, uri)
    token = make_token(uri, "restart", Role.EDITOR)
    ws = Workspace(Settings(home=tmp_path / "client", server_uri=first.url, token=token))
    second = None
    try:
        with ws.start_run("restart") as run:
            for i in range(1000):
                ws.log_metric("loss", float(i))
            ws.flush()
            first.stop()
            for i in range(1000, 2000):
                ws.log_metric("loss", float(i))  # buffered; flushes are refused meanwhile
            second = start_server(tmp_path, uri, port=first.port)
        # end_run flushed the buffer through the restarted server
        history = ws.get_metric_history(run.id, "loss")
    finally:
        ws.close()
        if second is not None:
            second.stop()
    assert [p.step for p in history] == list(range(2000))
    store = Store.open(uri)
    try:
        assert service.count_metric_points(store, run.id) == 2000
    finally:
        store.close()


def test_an_unreachable_server_is_unavailable_after_the_retry_window(tmp_path: Path) -> None:
    with httpx.Client() as probe:  # nothing listens on this port
        port = 9
        with pytest.raises(httpx.ConnectError):
            probe.get(f"http://127.0.0.1:{port}/health")
    client = HttpTracking(f"http://127.0.0.1:{port}", token="mp_x", retry_for_s=0.3)
    with pytest.raises(Unavailable, match=r"did not answer GET /api/v1/runs/r1 within 0.3 s"):
        client.get_run("r1")
    client.close()

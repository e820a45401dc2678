"""The SDK's tracking calls through a real ``modelpilot server`` (SQLite and PostgreSQL).

``mp.init(server=..., token=...)`` or ``MODELPILOT_SERVER_URI``/``MODELPILOT_TOKEN`` switch
tracking to the server with no code change; metric points are buffered, sent in batches and
all read back once the run ends; calls not yet served say so instead of writing locally.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelpilot as mp
from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.tracking import service
from modelpilot.workspace import Workspace
from mp_server import RunningServer, make_token, pg_schema, start_server


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp(f"sdk-{request.param}")
    if request.param == "sqlite":
        running = start_server(home, f"sqlite:///{home / 'mp.db'}")
        yield running
        running.stop()
        return
    with pg_schema() as uri:
        running = start_server(home, uri)
        yield running
        running.stop()


@pytest.fixture(scope="module")
def token(server: RunningServer) -> str:
    return make_token(server.store_uri, "sdk", Role.EDITOR)


@pytest.fixture
def remote(server: RunningServer, token: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(
        Settings(
            home=tmp_path / "client-home",
            server_uri=server.url,
            token=token,
            metric_flush_interval_ms=20,
        )
    )
    yield ws
    ws.close()


def test_every_point_logged_one_by_one_reads_back_after_the_run_ends(
    remote: Workspace, server: RunningServer
) -> None:
    with remote.start_run("sdk-exp", name="one-by-one", tags={"via": "http"}) as run:
        remote.log_params({"lr": 0.1, "depth": 6})
        remote.set_tags({"stage": "dev"})
        for i in range(3000):
            remote.log_metric("loss", 1.0 / (i + 1))
        remote.log_batch("acc", [0.5, 0.6, 0.7])
    history = remote.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(3000))
    assert [p.value for p in history] == [1.0 / (i + 1) for i in range(3000)]
    store = Store.open(server.store_uri)  # the server's own store holds it, exactly once
    try:
        assert service.count_metric_points(store, run.id) == 3003
        stored = service.get_run(store, run.id)
    finally:
        store.close()
    assert stored.status == mp.RunStatus.FINISHED
    assert stored.params == {"lr": "0.1", "depth": "6"}
    assert stored.tags == {"via": "http", "stage": "dev"}
    assert not (remote.settings.home / "modelpilot.db").exists()  # nothing written locally


def test_search_runs_through_the_server_returns_a_frame(remote: Workspace) -> None:
    for auc in (0.7, 0.9, 0.8):
        with remote.start_run("sdk-search"):
            remote.log_metric("auc", auc)
    frame = remote.search_runs("sdk-search", "metrics.auc > 0.75", ["metrics.auc DESC"])
    assert list(frame["metrics.auc"]) == [0.9, 0.8]
    assert len(remote.search_runs("sdk-search", max_results=2)) == 2


def test_calls_not_yet_served_say_so_instead_of_writing_locally(remote: Workspace) -> None:
    with pytest.raises(InvalidInput, match="This call is not yet available over modelpilot server"):
        remote.get_model_version("churn/1")
    run = remote.start_run("sdk-local-only")
    with pytest.raises(InvalidInput, match="only tracking calls are served so far"):
        remote.log_artifact(__file__)
    remote.end_run(run_id=run.id)
    assert not (remote.settings.home / "modelpilot.db").exists()


def test_environment_variables_switch_an_unchanged_script_to_the_server(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        """
        import modelpilot as mp
        with mp.start_run("env-switch") as run:
            mp.log_param("source", "env")
            for i in range(500):
                mp.log_metric("loss", float(i))
        print(run.id)
        """
    )
    env = {
        **os.environ,
        "MODELPILOT_HOME": str(tmp_path / "script-home"),
        "MODELPILOT_SERVER_URI": server.url,
        "MODELPILOT_TOKEN": token,
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    run_id = out.stdout.strip().splitlines()[-1]
    store = Store.open(server.store_uri)
    try:
        assert service.count_metric_points(store, run_id, "loss") == 500
        assert service.get_run(store, run_id).params == {"source": "env"}
    finally:
        store.close()
    assert not (tmp_path / "script-home" / "modelpilot.db").exists()


def test_mp_init_with_server_and_token_routes_tracking_there(
    server: RunningServer, token: str, tmp_path: Path
) -> None:
    ws = mp.init(tmp_path / "init-home", server=server.url, token=token)
    try:
        with mp.start_run("init-switch") as run:
            mp.log_metrics({"a": 1.0, "b": 2.0})
        assert mp.get_run(run.id).metrics == {"a": 1.0, "b": 2.0}
        assert ws.is_remote
    finally:
        mp.init(tmp_path / "local-home")  # leave the process on a local workspace
        mp.workspace().close()

"""A model server following a remote control plane, and the tokens on its routes.

A real ``modelpilot server`` on SQLite holds the models, the deployment, the logging policies
and the tokens; real ``modelpilot serve web --server URL --token T`` processes, each with its
own empty MODELPILOT_HOME, serve from it: changes made through the server (canary, promote, a
logging policy, a revoked token) reach them within a bounded time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from conftest import HERE, bearer, frame, wait_ready
from modelpilot.config import Settings
from modelpilot.identity import Role
from modelpilot.predictions import read_predictions
from modelpilot.serving.app import DataPlane
from modelpilot.serving.settings import ServingSettings
from modelpilot.store import Store
from modelpilot.store.events import list_events
from modelpilot.workspace import Workspace
from mp_server import RunningServer, free_port, make_token, start_server

RECORD = {"age": 40, "income": 52.5, "calls": 3}
TOKEN_CACHE_S = 1.0


def _until(check: Callable[[], bool], what: str, deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)  # polling another process's view, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("control-plane")
    running = start_server(home, f"sqlite:///{home / 'mp.db'}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tokens(control: RunningServer) -> dict[Role, str]:
    return {role: make_token(control.store_uri, f"remote-{role.label}", role) for role in Role}


@pytest.fixture(scope="module")
def client_ws(
    control: RunningServer, tokens: dict[Role, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    """A deployer's SDK on the control plane: churn/1 and churn/2 logged, ``web`` on churn/1."""
    home = tmp_path_factory.mktemp("client")
    ws = Workspace(Settings(home=home, server_uri=control.url, token=tokens[Role.DEPLOYER]))
    x = frame()
    y = (x["calls"] + (x["income"] > 50) > 2).astype(int)
    ws.log_model(LogisticRegression(max_iter=500).fit(x, y), "churn", input_example=x.head())
    ws.log_model(LogisticRegression(C=0.1, max_iter=500).fit(x, y), "churn", input_example=x.head())
    ws.deployments.create_deployment("web", "churn/1")
    yield ws
    ws.close()


class DataPlaneProcess:
    """``modelpilot serve`` subprocesses following the control plane; stopped at the end."""

    def __init__(self, control: RunningServer, root: Path) -> None:
        self.control = control
        self.root = root
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, token: str, *extra: str) -> tuple[str, Path]:
        port = free_port()
        home = self.root / f"dp-{port}"
        env = {**os.environ, "MODELPILOT_HOME": str(home)}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        for name in ("MODELPILOT_SERVER_URI", "MODELPILOT_TOKEN", "MODELPILOT_STORE_URI"):
            env.pop(name, None)
        command = [sys.executable, "-m", "modelpilot.cli.main", "serve", "web"]
        command += ["--server", self.control.url, "--token", token, "--port", str(port)]
        command += ["--token-cache-s", str(TOKEN_CACHE_S), *extra]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        return url, home

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=60)


@pytest.fixture(scope="module")
def planes(
    control: RunningServer, client_ws: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DataPlaneProcess]:
    started = DataPlaneProcess(control, tmp_path_factory.mktemp("data-planes"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def follower(planes: DataPlaneProcess, tokens: dict[Role, str]) -> tuple[str, Path]:
    """The data plane with model control, reading the control plane with a viewer token."""
    return planes.start(tokens[Role.VIEWER], "--model-control")


def _predict(url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/predict/web", json=[RECORD], headers=headers, timeout=30)


def _routes(url: str) -> dict[str, Any]:
    status: dict[str, Any] = httpx.get(f"{url}/deployments/web", timeout=10).json()
    return status


def test_a_data_plane_with_its_own_home_serves_the_control_planes_deployment(
    follower: tuple[str, Path], tokens: dict[Role, str], control: RunningServer
) -> None:
    url, home = follower
    reply = _predict(url)
    assert reply.status_code == 200, reply.text
    assert reply.json()["version"] == 1
    assert not (home / "modelpilot.db").exists()  # nothing read from a local store
    assert any((home / "cache" / "packages").rglob("*"))  # the package is cached in its home
    whoami = httpx.get(
        f"{control.url}/api/v1/whoami", headers=bearer(tokens[Role.VIEWER]), timeout=10
    )
    assert whoami.json() == {"name": "remote-viewer", "role": "viewer"}


def test_canary_and_promote_through_the_server_reach_the_data_plane(
    follower: tuple[str, Path], client_ws: Workspace
) -> None:
    url, _ = follower
    canary = client_ws.deployments.set_canary("web", "churn/2", 50, reason="try v2")
    _until(lambda: _routes(url)["revision"] == canary.revision, "the canary revision")
    assert sorted(r["version"] for r in _routes(url)["routes"]) == [1, 2]
    promoted = client_ws.deployments.promote("web", reason="v2 is good")
    _until(lambda: _routes(url)["revision"] == promoted.revision, "the promotion")
    assert [(r["version"], r["weight"]) for r in _routes(url)["routes"]] == [(2, 100)]
    assert {_predict(url).json()["version"] for _ in range(10)} == {2}


def test_a_logging_policy_set_through_the_server_applies_to_the_data_planes_log(
    follower: tuple[str, Path], control: RunningServer, tokens: dict[Role, str], tmp_path: Path
) -> None:
    url, home = follower
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "cli-home"), "COLUMNS": "200"}
    env |= {"MODELPILOT_SERVER_URI": control.url, "MODELPILOT_TOKEN": tokens[Role.VIEWER]}
    command = [sys.executable, "-m", "modelpilot.cli.main", "logs", "policy"]
    set_calls = [*command, "set", "churn", "--column", "calls=drop"]
    refused = subprocess.run(set_calls, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "has role viewer; POST /api/v1/logging-policies needs deployer" in refused.stderr
    env["MODELPILOT_TOKEN"] = tokens[Role.DEPLOYER]
    done = subprocess.run(set_calls, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([*command, "show"], env=env, capture_output=True, text=True, timeout=120)
    assert "calls=drop" in shown.stdout and "token:remote-deployer" in shown.stdout

    def logged_without_calls() -> bool:
        request_id = f"policy-{time.monotonic_ns()}"
        reply = httpx.post(
            f"{url}/predict/web", json=[RECORD], headers={"x-request-id": request_id}
        )
        assert reply.status_code == 200
        httpx.post(f"{url}/admin/flush", timeout=30).raise_for_status()
        rows = read_predictions(home / "predictions")
        row = rows[rows["request_id"] == request_id].iloc[0]
        assert row["in.age"] == RECORD["age"]  # a column without a policy is kept
        return "in.calls" not in rows or bool(pd.isna(row["in.calls"]))  # dropped

    _until(logged_without_calls, "the policy to reach the data plane's log")
    store = Store.open(control.store_uri)
    with store.read() as conn:
        (event,) = list_events(conn, "model:churn")[:1]
    store.close()
    assert (event.kind, event.actor) == ("logging_policy.set", "token:remote-deployer")


def test_repository_routes_need_a_deployer_token_verified_by_the_control_plane(
    follower: tuple[str, Path], tokens: dict[Role, str]
) -> None:
    url, _ = follower
    load = f"{url}/v2/repository/models/churn/load"
    body = {"parameters": {"version": "1"}}
    missing = httpx.post(load, json=body, timeout=30)
    assert missing.status_code == 401 and "requires an API token" in missing.json()["error"]
    wrong = httpx.post(load, json=body, headers=bearer("mp_" + "0" * 16 + "_nope"), timeout=30)
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]
    viewer = httpx.post(load, json=body, headers=bearer(tokens[Role.VIEWER]), timeout=30)
    assert viewer.status_code == 403
    assert (
        "has role viewer; POST /v2/repository/models/churn/load needs deployer"
        in (viewer.json()["error"])
    )
    deployer = httpx.post(load, json=body, headers=bearer(tokens[Role.DEPLOYER]), timeout=30)
    assert deployer.status_code == 200, deployer.text
    assert deployer.json() == {"name": "churn", "version": "1"}
    assert _predict(url).status_code == 200  # inference stays open without --require-token


def test_a_revoked_token_is_refused_within_the_cache_ttl(
    follower: tuple[str, Path], control: RunningServer, tokens: dict[Role, str]
) -> None:
    url, _ = follower
    short = make_token(control.store_uri, "remote-short", Role.DEPLOYER)
    index = f"{url}/v2/repository/index"
    assert httpx.post(index, headers=bearer(short), timeout=30).status_code == 200
    revoked = httpx.delete(
        f"{control.url}/api/v1/tokens/remote-short", headers=bearer(tokens[Role.ADMIN])
    )
    assert revoked.status_code == 200, revoked.text
    started = time.monotonic()
    _until(
        lambda: httpx.post(index, headers=bearer(short), timeout=30).status_code == 401,
        "the revocation to reach the data plane",
        deadline_s=TOKEN_CACHE_S + 10,
    )
    assert time.monotonic() - started < TOKEN_CACHE_S + 10
    again = httpx.post(index, headers=bearer(short), timeout=30)
    assert "was revoked" in again.json()["error"]


def test_require_token_guards_every_route_but_the_health_probes(
    planes: DataPlaneProcess, tokens: dict[Role, str]
) -> None:
    url, _ = planes.start(tokens[Role.VIEWER], "--require-token", "--no-log")
    missing = _predict(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "Unauthorized"  # /predict's own error style
    assert _predict(url, **bearer(tokens[Role.VIEWER])).status_code == 200
    types = {"age": "INT64", "income": "FP64", "calls": "INT64"}
    infer = {"inputs": [{"name": n, "shape": [1], "datatype": types[n], "data": [v]}
                        for n, v in RECORD.items()]}  # fmt: skip
    assert httpx.post(f"{url}/v2/models/churn/infer", json=infer).status_code == 401
    ok = httpx.post(f"{url}/v2/models/churn/infer", json=infer, headers=bearer(tokens[Role.VIEWER]))
    assert ok.status_code == 200, ok.text
    # the route walk: every route of the data plane refuses a request without a token
    app = DataPlane(ServingSettings()).build_app()
    paths = [r.path for r in app.app.routes] + ["/v2/repository/index"]
    for path in paths:
        concrete = path.replace("{name}", "churn").replace("{version}", "1")
        reply = httpx.request(
            "POST" if "flush" in path or "repository" in path else "GET", url + concrete
        )
        expected = 200 if path.startswith("/v2/health/") else 401
        assert reply.status_code == expected, (path, reply.text)

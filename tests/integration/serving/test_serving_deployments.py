"""Deployments in the data plane: routing, stickiness, shares, shadows, live config changes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from scipy.stats import chisquare

from conftest import Server
from modelpilot import release
from modelpilot.config import Settings
from modelpilot.predictions import read_predictions
from modelpilot.workspace import Workspace
from mp_server import copy_home

RECORD = {"age": 40, "income": 52.5, "calls": 3}


@pytest.fixture
def dep_home(home: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    copy_home(home, copy)
    return copy


def _wait_revision(server: Server, name: str, revision: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.get(f"{server.url}/deployments/{name}").json().get("revision") == revision:
            return
        time.sleep(0.02)  # polling the server's view, bounded by the deadline
    raise AssertionError(f"server did not reach revision {revision}")


@pytest.mark.slow  # three servers and 900 requests: make test-slow (CI runs both)
def test_ab_assignment_is_sticky_across_processes_and_shares_match_weights(
    start_server: Callable[..., Server], dep_home: Path
) -> None:
    ws = Workspace(Settings(home=dep_home))
    release.create_deployment(ws.store, "churn-ab", "churn/1")
    release.set_ab(ws.store, "churn-ab", "churn/2", 30, "user_id")
    ws.close()
    first = start_server("churn-ab", server_home=dep_home, extra=("--no-log",))
    second = start_server("churn-ab", server_home=dep_home, extra=("--no-log",))
    users = [f"user-{i}" for i in range(600)]
    with httpx.Client() as client:
        one = [
            client.post(f"{first.url}/predict/churn-ab", json=[{**RECORD, "user_id": u}]).json()[
                "variant"
            ]
            for u in users
        ]
        two = [
            client.post(f"{second.url}/predict/churn-ab", json=[{**RECORD, "user_id": u}]).json()[
                "variant"
            ]
            for u in users[:200]
        ]
    assert one[:200] == two  # both processes agree on every user
    counts = Counter(one)
    assert (
        chisquare([counts["stable"], counts["challenger"]], [0.7 * 600, 0.3 * 600]).pvalue > 0.001
    )
    first.stop()
    restarted = start_server("churn-ab", server_home=dep_home, extra=("--no-log",))
    again = [
        httpx.post(f"{restarted.url}/predict/churn-ab", json=[{**RECORD, "user_id": u}]).json()[
            "variant"
        ]
        for u in users[:100]
    ]
    assert again == one[:100]  # and restarts do not reshuffle anyone


def test_shadow_outputs_are_logged_and_never_returned(
    start_server: Callable[..., Server], dep_home: Path
) -> None:
    ws = Workspace(Settings(home=dep_home))
    release.create_deployment(ws.store, "churn-sh", "churn/1")
    release.set_shadow(ws.store, "churn-sh", "churn/2")
    ws.close()
    server = start_server("churn-sh", server_home=dep_home)
    ids = []
    for _ in range(10):
        body = httpx.post(f"{server.url}/predict/churn-sh", json=[RECORD]).json()
        assert body["variant"] == "stable" and body["version"] == 1
        ids.append(body["request_id"])
    server.stop()  # drains the shadow tasks and flushes the log
    logged = read_predictions(dep_home / "predictions", deployment="churn-sh")
    by_variant = (
        logged[logged["request_id"].isin(ids)].groupby("variant")["request_id"].nunique().to_dict()
    )
    assert by_variant == {"stable": 10, "shadow": 10}
    assert set(logged[logged["variant"] == "shadow"]["version"]) == {2}


@pytest.mark.slow  # a load generator for the length of 20 changes: make test-slow
def test_twenty_configuration_changes_under_load_fail_no_request(
    start_server: Callable[..., Server], dep_home: Path
) -> None:
    ws = Workspace(Settings(home=dep_home))
    release.create_deployment(ws.store, "churn-live", "churn/1")
    server = start_server("churn-live", server_home=dep_home, extra=("--no-log",))
    statuses: Counter[int] = Counter()
    versions: Counter[int] = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(20_000):  # bounded
                if stop.is_set():
                    return
                reply = client.post(f"{server.url}/predict/churn-live", json=[RECORD])
                statuses[reply.status_code] += 1
                if reply.status_code == 200:
                    versions[reply.json()["version"]] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    revision = 1
    for change in range(20):
        if change % 2 == 0:
            deployment = release.set_canary(ws.store, "churn-live", "churn/2", 10 + 4 * change)
        else:
            deployment = release.rollback(ws.store, "churn-live", reason="flip back")
        revision = deployment.revision
        _wait_revision(server, "churn-live", revision)
    stop.set()
    for t in threads:
        t.join()
    ws.close()
    assert set(statuses) == {200}, statuses
    assert statuses[200] > 100 and versions[2] > 0

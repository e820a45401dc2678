"""End to end: a canary failing 20% of its requests is rolled back from live evidence, and the
stable variant then serves with no client-visible errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import Server, frame
from modelpilot import release
from modelpilot.config import Settings
from modelpilot.release.config import GuardPolicy, RolloutPolicy
from modelpilot.release.evidence import PredictionLogStats
from modelpilot.release.rollout import tick
from modelpilot.workspace import Workspace
from mp_server import copy_home

GOOD = {"age": 40, "income": 52.5, "calls": 3}
BAD = {"age": -5, "income": 52.5, "calls": 3}  # the flaky model raises on negative age


def test_failing_canary_is_rolled_back_and_stable_serves_cleanly(
    start_server: Callable[..., Server], home: Path, tmp_path: Path
) -> None:
    server_home = tmp_path / "home"
    copy_home(home, server_home)
    ws = Workspace(Settings(home=server_home))
    release.create_deployment(ws.store, "churn-canary", "churn/1")
    policy = RolloutPolicy(steps=(50, 100), min_requests_per_step=10_000, min_seconds_per_step=3600)
    release.set_canary(ws.store, "churn-canary", "flaky/1", 50, policy=policy)
    server = start_server("churn-canary", server_home=server_home)
    source = PredictionLogStats(server_home / "predictions")
    decision = None
    with httpx.Client() as client:
        rounds = 0
        for _ in range(20):  # bounded: each round sends 100 requests, 20% of them bad
            rounds += 1
            for i in range(100):
                client.post(
                    f"{server.url}/predict/churn-canary", json=[BAD if i % 5 == 0 else GOOD]
                )
            client.post(f"{server.url}/admin/flush")
            decision = tick(ws.deployments, "churn-canary", source)
            if decision.action == "rollback":
                break
        assert decision is not None and decision.action == "rollback", decision
        assert rounds <= 3  # within the first few hundred requests, long before the step ends
        revision = release.get_deployment(ws.store, "churn-canary").revision
        deadline = time.monotonic() + 10
        while client.get(f"{server.url}/deployments/churn-canary").json()["revision"] != revision:
            assert time.monotonic() < deadline
            time.sleep(0.02)  # polling the server's snapshot, bounded
        after = [
            client.post(f"{server.url}/predict/churn-canary", json=[BAD if i % 5 == 0 else GOOD])
            for i in range(200)
        ]
    assert {r.status_code for r in after} == {200}
    assert {r.json()["variant"] for r in after} == {"stable"}
    history = release.history(ws.store, "churn-canary")
    assert history[0].action == "auto_rollback" and "error rate" in history[0].reason
    ws.close()


def test_an_equally_fast_canary_walks_to_promotion_over_real_http(
    start_server: Callable[..., Server], home: Path, tmp_path: Path
) -> None:
    """Two comparable models behind a real server: latency noise must not roll the canary back."""
    server_home = tmp_path / "home"
    copy_home(home, server_home)
    ws = Workspace(Settings(home=server_home))
    release.create_deployment(ws.store, "churn-fast", "churn/1")
    policy = RolloutPolicy(
        steps=(50, 100),
        min_requests_per_step=100,
        min_seconds_per_step=0,
        guards=GuardPolicy(max_prediction_psi=None),  # the two fits differ on purpose (C=1, 0.1)
    )
    release.set_canary(ws.store, "churn-fast", "churn/2", 50, policy=policy)
    server = start_server("churn-fast", server_home=server_home)
    source = PredictionLogStats(server_home / "predictions")
    actions = []
    with httpx.Client() as client:
        for window in range(6):  # bounded: two steps need two windows
            for row in frame(300, seed=window).to_dict(orient="records"):
                client.post(f"{server.url}/predict/churn-fast", json=[row])
            client.post(f"{server.url}/admin/flush")
            decision = tick(ws.deployments, "churn-fast", source)
            actions.append(decision.action)
            if decision.action in ("promote", "rollback"):
                break
            revision = release.get_deployment(ws.store, "churn-fast").revision
            deadline = time.monotonic() + 10
            while client.get(f"{server.url}/deployments/churn-fast").json()["revision"] != revision:
                assert time.monotonic() < deadline
                time.sleep(0.02)  # polling the server's snapshot, bounded
    assert actions == ["advance", "promote"], release.history(ws.store, "churn-fast")[0].reason
    ws.close()

"""A server with something to show on the dashboard, for the page and browser tests.

Runs, params, metrics, a child run and an artifact; two datasets (one with its data risks);
three model versions (v1 from a run, with its datasets, card fields, an evaluation and gate
verdicts; v3 retired) with aliases; a deployment with a 10% canary, three monitoring reports,
alerts and a loop decision: written through the same services the SDK and the API use, on the
store of a real ``modelpilot server`` process (the artifact goes over HTTP). The loop decision
is written as the loop's agent leaves it in its tables (a real one needs a trained pipeline).
A test may add a deployment whose reports chart drift per feature and estimated vs realised
performance (``monitored_deployment``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import insert

from modelpilot import release
from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.manager import Alert
from modelpilot.artifacts.local import LocalArtifactStore
from modelpilot.cards import update_card_fields
from modelpilot.clock import now_ms
from modelpilot.data.entities import DatasetVersion
from modelpilot.data.risks import assess_risks
from modelpilot.data.service import log_dataset
from modelpilot.identity import Role
from modelpilot.monitoring.drift.detect import detect_drift
from modelpilot.monitoring.jobs import MonitorResult
from modelpilot.monitoring.slice_performance import SlicePerformance, SliceReport
from modelpilot.predictions import LogBatch, log_folder, write_segments
from modelpilot.registry.entities import VersionDataset
from modelpilot.registry.records import add_record
from modelpilot.registry.service import register_version, retire_version, set_alias
from modelpilot.store import Store
from modelpilot.store.schema import loop_decisions, loop_steps
from modelpilot.tracking import service
from modelpilot.tracking.entities import RunStatus
from modelpilot.tracking.local import LocalTracking
from mp_server import RunningServer, make_token, start_server

if TYPE_CHECKING:  # the browser tests' types; the HTTP tests never load Playwright
    pass

LONG_SERIES = 20_000  # points of the long run's "loss": more than a chart draws
DEPLOYMENT = "churn-prod"
PARAMS = {
    "baseline": {"model": "gbm", "lr": "0.1", "depth": "6", "seed": "0"},
    "tuned": {"model": "gbm", "lr": "0.05", "depth": "6", "seed": "0"},
    "wide": {"model": "gbm", "lr": "0.1", "depth": "8", "seed": "0"},
}
ARTIFACT = b"confusion matrix\n"
T0_MS = 1_764_500_000_000  # 2025-11-30: the monitoring windows' and alerts' times
DECISION_ID = "d" * 8 + "0" * 24


@dataclass
class Seeded:
    """What was written: run ids by name, the tokens by role, dataset versions by name
    (``name@version``), and the server."""

    server: RunningServer
    run_ids: dict[str, str]
    tokens: dict[Role, str]
    datasets: dict[str, str]

    def headers(self, role: Role) -> dict[str, str]:
        """``Authorization: Bearer`` for a token of ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: Role = Role.VIEWER) -> httpx.Response:
        """GET a page of the server with a token of ``role``."""
        return httpx.get(self.server.url + path, headers=self.headers(role), timeout=30)


@contextmanager
def seeded_server(home: Path) -> Iterator[Seeded]:
    """A server on a SQLite file in ``home`` with the dashboard's test data, stopped at the
    end."""
    server = start_server(home, f"sqlite:///{home / 'mp.db'}")
    try:
        yield seed(server)
    finally:
        server.stop()


@contextmanager
def traffic_server(home: Path) -> Iterator[Seeded]:
    """A server with a token of each role and churn v1 and v2 registered, for tests that log
    their own traffic into its home (:func:`log_traffic`); stopped at the end."""
    server = start_server(home, f"sqlite:///{home / 'mp.db'}")
    try:
        store = Store.open(server.store_uri)
        try:
            register_churn(store)
            register_churn(store)
        finally:
            store.close()
        yield Seeded(server, {}, role_tokens(server), {})
    finally:
        server.stop()


def seed(server: RunningServer) -> Seeded:
    """Write the dashboard's test data on ``server``'s store."""
    tokens = role_tokens(server)
    store = Store.open(server.store_uri)
    try:
        run_ids = _runs(store)
        _artifact(server, store, run_ids["baseline"], tokens[Role.EDITOR])
        datasets = _datasets(store, LocalArtifactStore(server.home / "artifacts"))
        _models(store, run_ids["baseline"], datasets)
        release.create_deployment(store, DEPLOYMENT, "churn/1", actor="token:seed")
        release.set_canary(store, DEPLOYMENT, "churn/2", 10, actor="token:seed", reason="try v2")
        _monitoring(store)
    finally:
        store.close()
    return Seeded(server, run_ids, tokens, {k: v.ref for k, v in datasets.items()})


def role_tokens(server: RunningServer) -> dict[Role, str]:
    """A token of each role (``ui-viewer``, ``ui-deployer``…) on ``server``'s store."""
    return {role: make_token(server.store_uri, f"ui-{role.label}", role) for role in Role}


def register_churn(
    store: Store,
    *,
    run_id: str | None = None,
    datasets: list[VersionDataset] | None = None,
    metrics: dict[str, float] | None = None,
) -> None:
    """The next version of the model ``churn`` (one input, ``x``)."""
    register_version(
        store,
        "churn",
        package_digest="ab" * 32,
        flavor="sklearn",
        signature={"input_kind": "columns", "inputs": [{"name": "x", "dtype": "float64"}]},
        run_id=run_id,
        datasets=datasets or (),
        metrics=metrics,
        actor="token:seed",
    )


def _datasets(store: Store, artifacts: LocalArtifactStore) -> dict[str, DatasetVersion]:
    """churn-train (its risks assessed: 10 duplicate rows) and churn-test (not assessed)."""
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"x": rng.normal(size=200), "plan": rng.choice(["a", "b"], 200)})
    train = pd.concat([train, train.head(10)], ignore_index=True).assign(churned=False)
    test = pd.DataFrame({"x": rng.normal(size=50), "plan": "a", "churned": True})
    risks = assess_risks(train, label="churned").to_dict()
    return {
        "train": log_dataset(store, artifacts, train, "churn-train", risks=risks),
        "test": log_dataset(store, artifacts, test, "churn-test"),
    }


def _models(store: Store, run_id: str, datasets: dict[str, DatasetVersion]) -> None:
    """churn v1 (from ``run_id`` with its data, card fields, an evaluation and two gate
    verdicts; champion), v2 (challenger) and v3 (retired)."""
    links = [
        VersionDataset(datasets["train"].name, datasets["train"].digest, "training"),
        VersionDataset(datasets["test"].name, datasets["test"].digest, "test"),
    ]
    register_churn(store, run_id=run_id, datasets=links, metrics={"auc": 0.81})
    for _ in (2, 3):
        register_churn(store)
    update_card_fields(store, "churn/1", {"intended_use": "Retention calls"}, actor="token:seed")
    metrics = {"auc": {"value": 0.84, "lower": 0.8, "upper": 0.88}, "accuracy": 0.79}
    add_record(store, "churn/1", "evaluation", {"metrics": metrics}, actor="token:seed")
    for passed, value in ((False, 0.74), (True, 0.84)):
        check = {
            "name": "auc >= 0.8",
            "passed": passed,
            "value": value,
            "threshold": 0.8,
            "message": f"auc {value} against 0.8",
        }
        add_record(
            store,
            "churn/1",
            "gate",
            {"policy": "prod-gate", "passed": passed, "checks": [check]},
            actor="token:seed",
        )
    set_alias(store, "churn", "champion", 1, actor="token:seed")
    set_alias(store, "churn", "challenger", 2, actor="token:seed")
    retire_version(store, "churn", 3, reason="superseded by churn/2", actor="token:seed")


def _monitoring(store: Store) -> None:
    """Three hourly reports on churn-prod (the last one with drift in ``x``), an alert that
    fired and resolved and one still firing, and a loop decision awaiting approval."""
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    for hour, shift in enumerate((0.0, 0.1, 1.5)):
        current = pd.DataFrame({"x": rng.normal(shift, 1, 400), "y": rng.normal(size=400)})
        drift = detect_drift(reference, current)
        end = T0_MS + (hour + 1) * 3_600_000
        result = MonitorResult(
            DEPLOYMENT,
            "churn/1",
            end - 3_600_000,
            end,
            400,
            drift,
            {"ops.requests": 400.0 + 50 * hour, "drift.share": len(drift.drifted_columns) / 2},
            [],
        )
        _keep(store, result)
    alerts = LocalAlerts(store, actor="token:seed")
    for rule, state, at in (
        ("latency", "firing", 1),
        ("latency", "resolved", 2),
        ("drift", "firing", 3),
    ):
        alerts.record_alert(
            Alert(
                rule,
                DEPLOYMENT,
                f"{rule}.value",
                2.0,
                1.0,
                ">",
                "warning",
                state,
                T0_MS + 3_600_000,
                T0_MS + at * 3_600_000,
                f"{rule} of {DEPLOYMENT} {state}",
            )
        )
    _awaiting_decision(store, DEPLOYMENT, DECISION_ID, T0_MS + 3 * 3_600_000)


def _keep(store: Store, result: MonitorResult) -> None:
    """Keep a monitoring report as ``modelpilot monitor run`` does (a version record)."""
    payload = {k: v for k, v in result.to_dict().items() if k not in ("report_id", "created_ms")}
    add_record(store, result.model, "monitoring", payload, actor="token:seed")


def _awaiting_decision(store: Store, deployment: str, decision_id: str, at: int) -> None:
    """A loop decision (candidate churn/2 against churn/1) awaiting approval, as the agent
    leaves it after training and evaluating."""
    with store.write() as conn:
        conn.execute(
            insert(loop_decisions).values(
                id=decision_id,
                deployment=deployment,
                policy_revision=1,
                firing_id=decision_id[::-1],  # one firing per decision
                trigger_name=f"{deployment}.drift",
                pipeline_run_id=None,
                candidate="churn/2",
                champion="churn/1",
                state="awaiting_approval",
                reason="drift in x: retrained",
                created_ms=at,
                updated_ms=at,
            )
        )
        for state in ("training", "evaluating", "awaiting_approval"):
            conn.execute(
                insert(loop_steps).values(
                    decision_id=decision_id,
                    state=state,
                    at_ms=at,
                    actor="agent:a1",
                    reason=f"entered {state}",
                    evidence={},
                )
            )


def _runs(store: Store) -> dict[str, str]:
    tracking = LocalTracking(store, actor="token:seed")
    ids: dict[str, str] = {}
    for i, (name, params) in enumerate(PARAMS.items()):
        run = tracking.create_run("churn", name=name, tags={"team": "risk"})
        tracking.log_params(run.id, params)
        rows = [("auc", 0.7 + 0.01 * i + step / 1000, step, 1000 + step) for step in range(50)]
        tracking.log_metrics(run.id, rows)
        tracking.set_status(run.id, RunStatus.FINISHED)
        ids[name] = run.id
    long = tracking.create_run("churn", name="long")
    tracking.log_metrics(
        long.id, [("loss", 1 + math.sin(s / 50), s, 2000 + s) for s in range(LONG_SERIES)]
    )
    ids["long"] = long.id
    child = tracking.create_run("churn", name="trial-1", parent_run_id=ids["baseline"])
    ids["trial-1"] = child.id
    return ids


def _artifact(server: RunningServer, store: Store, run_id: str, token: str) -> None:
    digest = hashlib.sha256(ARTIFACT).hexdigest()
    reply = httpx.put(
        f"{server.url}/api/v1/artifacts/{digest}",
        content=ARTIFACT,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    reply.raise_for_status()
    service.record_artifact(store, run_id, "eval/confusion.txt", digest, len(ARTIFACT))


def canary_deployment(server: RunningServer, name: str) -> str:
    """A new deployment of churn v1 with churn v2 as a 10% canary (for a test that changes
    it), on ``server``'s store."""
    store = Store.open(server.store_uri)
    try:
        release.create_deployment(store, name, "churn/1", actor="token:seed")
        release.set_canary(store, name, "churn/2", 10, actor="token:seed", reason="try v2")
    finally:
        store.close()
    return name


def log_traffic(
    home: Path,
    deployment: str,
    variant: str,
    version: int,
    requests: int,
    *,
    errors: int = 0,
    seed: int = 0,
) -> list[str]:
    """``requests`` answered by ``variant`` (churn ``version``) now, as the data plane logs
    them into ``home``'s prediction log: lognormal latencies around 5 ms, a beta(2, 5) score,
    the first ``errors`` failed. Returns the request ids."""
    rng = np.random.default_rng(seed)
    at = now_ms()
    ids = [f"{deployment}-{variant}-{seed}-{i}" for i in range(requests)]
    scores: list[float | None] = [
        None if i < errors else float(s) for i, s in enumerate(rng.beta(2, 5, requests))
    ]
    columns = {
        "request_id": ids,
        "row": np.zeros(requests, np.int64),
        "timestamp_ms": np.full(requests, at, np.int64),
        "version": np.full(requests, version, np.int64),
        "deployment": [deployment] * requests,
        "variant": [variant] * requests,
        "latency_ms": rng.lognormal(np.log(5.0), 0.3, requests),
        "error": ["ValueError: bad input" if s is None else None for s in scores],
        "in.x": rng.normal(size=requests),
        "out.prediction": [None if s is None else int(s > 0.5) for s in scores],
        "out.proba.1": scores,
    }
    write_segments(log_folder(home), [LogBatch("churn", requests, columns)])
    return ids


@contextmanager
def login_client(url: str, token: str) -> Iterator[httpx.Client]:
    """A client (a cookie jar) logged in through the login form with ``token``."""
    with httpx.Client(base_url=url, timeout=30) as client:
        form = client.get("/ui/login")
        reply = client.post(
            "/ui/login", data={"csrf": csrf_of(form.text), "token": token, "next": "/ui/runs"}
        )
        assert reply.status_code == 303 and reply.headers["location"] == "/ui/runs"
        yield client


@contextmanager
def logged_in_client(seeded: Seeded, role: Role) -> Iterator[httpx.Client]:
    """A client (a cookie jar) logged in through the login form with a token of ``role``."""
    with login_client(seeded.server.url, seeded.tokens[role]) as client:
        yield client


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def deploy_history(seeded: Seeded, name: str) -> list[dict[str, object]]:
    """``modelpilot deploy history NAME --json`` against the server, in a subprocess."""
    env = {
        **os.environ,
        "MODELPILOT_SERVER_URI": seeded.server.url,
        "MODELPILOT_TOKEN": seeded.tokens[Role.VIEWER],
        "MODELPILOT_HOME": str(seeded.server.home / "cli"),
    }
    command = [sys.executable, "-m", "modelpilot.cli.main", "deploy", "history", name, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    revisions: list[dict[str, object]] = json.loads(done.stdout)
    return revisions


@dataclass
class Monitored:
    """A deployment whose reports chart each feature's drift and a metric estimated and
    realised, with values outside the input domain in its newest window and a loop decision
    awaiting approval."""

    name: str
    decision_id: str
    reports: list[MonitorResult]  # as kept, oldest first
    domain: dict[tuple[str, str], int]  # (column, kind) -> values flagged in the newest window


def monitored_deployment(server: RunningServer, name: str, decision_id: str) -> Monitored:
    """Four hourly reports on a new deployment ``name`` of churn v1: ``x`` drifts more and
    more (weighed 0.8 of the verdict, ``y`` 0.2); roc_auc is estimated without labels in the
    first three windows (interval included) and realised in the last two. Flagged rows go in
    ``server``'s prediction log (one before the newest window and one of a shadow, neither
    counted there)."""
    store = Store.open(server.store_uri)
    try:
        release.create_deployment(store, name, "churn/1", actor="token:seed")
        reports = [_performance_report(name, hour) for hour in range(4)]
        for report in reports:
            _keep(store, report)
        _awaiting_decision(store, name, decision_id, T0_MS + 4 * 3_600_000)
    finally:
        store.close()
    newest = reports[-1]
    fields = ["x:out_of_range", "x:out_of_range", "x:out_of_range,plan:unseen_category", None]
    rows = [(newest.window_start_ms + 1000 * i, "stable", f) for i, f in enumerate(fields)]
    rows += [(newest.window_start_ms - 1, "stable", "x:out_of_range")]  # the window before
    rows += [(newest.window_start_ms + 1, "shadow", "plan:unexpected_null")]
    batch = LogBatch(
        "churn",
        len(rows),
        {
            "request_id": [f"{name}-{i}" for i in range(len(rows))],
            "timestamp_ms": np.array([r[0] for r in rows], dtype=np.int64),
            "deployment": [name] * len(rows),
            "variant": [r[1] for r in rows],
            "out_of_domain": np.array([r[2] is not None for r in rows]),
            "out_of_domain_fields": [r[2] for r in rows],
        },
    )
    write_segments(log_folder(server.home), [batch])
    domain = {("x", "out_of_range"): 3, ("plan", "unseen_category"): 1}
    return Monitored(name, decision_id, reports, domain)


_ESTIMATES = ((0.82, 0.79, 0.85), (0.79, 0.75, 0.83), (0.74, 0.69, 0.79), None)
_REALISED = (None, None, 0.76, 0.71)


def _performance_report(deployment: str, hour: int) -> MonitorResult:
    rng = np.random.default_rng(11 + hour)
    reference = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    shift = (0.0, 0.2, 1.0, 1.5)[hour]
    current = pd.DataFrame({"x": rng.normal(shift, 1, 400), "y": rng.normal(size=400)})
    drift = detect_drift(reference, current, importance={"x": 0.8, "y": 0.2})
    figures = {"ops.requests": 400.0}
    if _REALISED[hour] is not None:
        figures |= {"performance.roc_auc": _REALISED[hour], "performance.labelled_rows": 250.0}
    estimate = _ESTIMATES[hour]
    if estimate is None:
        overall = SlicePerformance(None, "(all)", "realised", _REALISED[hour], None, None,
                                   400, 250, 0.84, False)  # fmt: skip
    else:
        overall = SlicePerformance(None, "(all)", "estimated", *estimate, 400, 0, 0.84, False)
    end = T0_MS + (hour + 1) * 3_600_000
    return MonitorResult(
        deployment, "churn/1", end - 3_600_000, end, 400, drift, figures, [],
        slices=SliceReport("roc_auc", 0.95, 200, overall, []),
    )  # fmt: skip

"""A server with something to show on the dashboard, for the page and browser tests.

Runs, params, metrics, a child run and an artifact; two datasets (one with its data risks);
three model versions (v1 from a run, with its datasets, card fields, an evaluation and gate
verdicts; v3 retired) with aliases; a deployment with a 10% canary, three monitoring reports,
alerts and a loop decision: written through the same services the SDK and the API use, on the
store of a real ``modelpilot server`` process (the artifact goes over HTTP). The loop decision
is written as the loop's agent leaves it in its tables (a real one needs a trained pipeline).
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
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response

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
        payload = {
            k: v for k, v in result.to_dict().items() if k not in ("report_id", "created_ms")
        }
        add_record(store, "churn/1", "monitoring", payload, actor="token:seed")
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
    with store.write() as conn:
        at = T0_MS + 3 * 3_600_000
        conn.execute(
            insert(loop_decisions).values(
                id=DECISION_ID,
                deployment=DEPLOYMENT,
                policy_revision=1,
                firing_id="f" * 32,
                trigger_name="churn-prod.drift",
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
                    decision_id=DECISION_ID,
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


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


class Watched:
    """A browser page whose console errors and requests are recorded."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", lambda r: self.requests.append(r.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, path: str) -> Response:
        """Go to ``path`` and wait until it loaded."""
        reply = self.page.goto(self.base_url + path, wait_until="load")
        assert reply is not None
        return reply

    def check_clean(self) -> None:
        """No console error and no request beyond the server so far."""
        outside = [u for u in self.requests if not u.startswith((self.base_url + "/", "data:"))]
        assert outside == [] and self.errors == []


@contextmanager
def logged_in(browser: Browser, seeded: Seeded, role: Role, width: int = 1280) -> Iterator[Watched]:
    """A fresh browser context logged in through the login form with a token of ``role``."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        watched = Watched(context.new_page(), seeded.server.url)
        watched.open("/ui/runs")  # redirected to the login form
        assert "/ui/login" in watched.page.url
        watched.page.fill("#token", seeded.tokens[role])
        watched.page.click("button[type=submit]")
        watched.page.wait_for_url("**/ui/runs")
        yield watched
    finally:
        context.close()


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

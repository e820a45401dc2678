"""A server with something to show on the dashboard, for the page and browser tests.

Runs, params, metrics, a child run and an artifact, two model versions and a
deployment with a 10% canary: written through the same services the SDK and the API use, on
the store of a real ``modelpilot server`` process (the artifact goes over HTTP).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelpilot import release
from modelpilot.identity import Role
from modelpilot.registry.service import register_version
from modelpilot.store import Store
from modelpilot.tracking import service
from modelpilot.tracking.entities import RunStatus
from modelpilot.tracking.local import LocalTracking
from mp_server import RunningServer, make_token, start_server

LONG_SERIES = 20_000  # points of the long run's "loss": more than a chart draws
DEPLOYMENT = "churn-prod"
PARAMS = {
    "baseline": {"model": "gbm", "lr": "0.1", "depth": "6", "seed": "0"},
    "tuned": {"model": "gbm", "lr": "0.05", "depth": "6", "seed": "0"},
    "wide": {"model": "gbm", "lr": "0.1", "depth": "8", "seed": "0"},
}
ARTIFACT = b"confusion matrix\n"


@dataclass
class Seeded:
    """What was written: run ids by name, the tokens by role, and the server."""

    server: RunningServer
    run_ids: dict[str, str]
    tokens: dict[Role, str]

    def headers(self, role: Role) -> dict[str, str]:
        """``Authorization: Bearer`` for a token of ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextmanager
def seeded_server(home: Path) -> Iterator[Seeded]:
    """A server on a SQLite file in ``home`` with the dashboard's test data, stopped at the
    end."""
    server = start_server(home, f"sqlite:///{home / 'mp.db'}")
    try:
        yield seed(server)
    finally:
        server.stop()


def seed(server: RunningServer) -> Seeded:
    """Write the dashboard's test data on ``server``'s store."""
    tokens = {role: make_token(server.store_uri, f"ui-{role.label}", role) for role in Role}
    store = Store.open(server.store_uri)
    try:
        run_ids = _runs(store)
        _artifact(server, store, run_ids["baseline"], tokens[Role.EDITOR])
        signature = {"input_kind": "columns", "inputs": [{"name": "x", "dtype": "float64"}]}
        for _ in range(2):
            register_version(
                store, "churn", package_digest="ab" * 32, flavor="sklearn", signature=signature
            )
        release.create_deployment(store, DEPLOYMENT, "churn/1", actor="token:seed")
        release.set_canary(store, DEPLOYMENT, "churn/2", 10, actor="token:seed", reason="try v2")
    finally:
        store.close()
    return Seeded(server, run_ids, tokens)


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


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)

"""Tracking changes made through the server land in the audit log under the caller's token,
one event per request (metric batches excepted: docs/audit.md), and runs record their creator."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
from sqlalchemy import select

from modelpilot.audit import verify_chain
from modelpilot.client import HttpTracking
from modelpilot.server.auth import Role
from modelpilot.store import Store
from modelpilot.store.events import list_events
from modelpilot.store.schema import runs
from modelpilot.tracking.entities import RunStatus
from mp_server import make_token, pg_schema, start_server


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_run_changes_through_the_server_are_events_of_the_token(tmp_path: Path, kind: str) -> None:
    sqlite = nullcontext(f"sqlite:///{tmp_path / 'mp.db'}")
    with pg_schema() if kind == "postgresql" else sqlite as uri:
        server = start_server(tmp_path, uri)
        client = HttpTracking(server.url, token=make_token(uri, "ana", Role.EDITOR))
        try:
            run = client.create_run("audited", name="r1")
            client.log_params(run.id, {"depth": 6})
            client.log_params(run.id, {"depth": 6})  # nothing new: no event
            client.set_tags(run.id, {"stage": "dev"})
            client.log_metrics(run.id, [("loss", float(i), i, 1) for i in range(500)])
            client.set_status(run.id, RunStatus.FINISHED)
        finally:
            client.close()
            server.stop()
        store = Store.open(uri)
        try:
            with store.read() as conn:
                found = list(reversed(list_events(conn, f"run:{run.id}")))
                created_by = conn.execute(
                    select(runs.c.created_by).where(runs.c.id == run.id)
                ).scalar_one()
            assert verify_chain(store).ok
        finally:
            store.close()
    assert [(e.kind, e.actor) for e in found] == [
        ("run.created", "token:ana"),
        ("run.params", "token:ana"),
        ("run.tags", "token:ana"),
        ("run.status", "token:ana"),
    ]
    payloads = [e.payload for e in found]
    assert payloads[0] == {"experiment": "audited", "name": "r1", "parent": None}
    assert payloads[1:] == [
        {"params": {"depth": "6"}},
        {"tags": {"stage": "dev"}},
        {"before": "RUNNING", "after": "FINISHED"},
    ]
    assert created_by == "token:ana"

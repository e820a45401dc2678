"""Two writers creating one experiment at once on PostgreSQL: the second gets the first's
experiment, not a unique-key error (two agents starting their first pipeline runs hit it)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import insert, text

from modelpilot.store import Store
from modelpilot.store.schema import experiments
from modelpilot.tracking.entities import Experiment
from modelpilot.tracking.service import get_or_create_experiment

pytestmark = pytest.mark.postgres


def test_an_experiment_another_writer_creates_meanwhile_is_returned(pg_schema_uri: str) -> None:
    store = Store.open(pg_schema_uri)
    found: list[Experiment | BaseException] = []

    def create() -> None:
        try:
            found.append(get_or_create_experiment(store, "race"))
        except BaseException as exc:
            found.append(exc)

    try:
        with store.engine.connect() as other, other.begin() as first:
            holder = other.execute(text("SELECT pg_backend_pid()")).scalar_one()
            other.execute(insert(experiments).values(name="race", created_ms=1))
            thread = threading.Thread(target=create)
            thread.start()  # it sees no experiment yet; its INSERT waits on ours
            deadline = time.monotonic() + 30
            while not _blocked_by(store, holder) and time.monotonic() < deadline:
                time.sleep(0.01)  # poll interval, bounded by the deadline
            assert _blocked_by(store, holder), found
            first.commit()
        thread.join(timeout=30)
        [got] = found
        assert isinstance(got, Experiment), got
        assert (got.name, got.created_ms) == ("race", 1)
    finally:
        store.close()


def _blocked_by(store: Store, pid: int) -> bool:
    with store.read() as conn:
        waiting = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
            {"pid": pid},
        ).scalar_one()
    return bool(waiting)

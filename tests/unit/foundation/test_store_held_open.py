"""``Store.held_open``: the server's idle SQLite connection never holds back a checkpoint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelpilot.store import Store
from modelpilot.tracking import service


def test_a_held_connection_lets_the_wal_be_checkpointed_completely(tmp_path: Path) -> None:
    path = tmp_path / "mp.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        with store.held_open():
            exp = service.get_or_create_experiment(store, "held")
            run = service.create_run(store, exp)
            service.log_metric_rows(store, run.id, [("loss", 1.0, i, 1) for i in range(500)])
            probe = sqlite3.connect(path)
            busy, _, _ = probe.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            probe.close()
            assert busy == 0  # no snapshot held open by the idle connection
            assert service.count_metric_points(store, run.id) == 500
    finally:
        store.close()

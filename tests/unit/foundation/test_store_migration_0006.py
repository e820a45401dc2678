"""Migration 0006 on a store that already holds runs: the latest metric of each run is filled
in from the points logged before, so search and get_run see them at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from older_store import store_at
from sqlalchemy import text

from modelpilot.errors import NotFound
from modelpilot.store import migrate
from modelpilot.tracking.local import LocalTracking


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_upgrade_fills_latest_metrics_from_existing_points(tmp_path: Path, kind: str) -> None:
    with store_at("0005", kind, tmp_path) as store:
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO experiments (id, name, created_ms) VALUES (1, 'e', 1)"))
            for run_id, name in [("a" * 32, "a"), ("b" * 32, "b")]:
                conn.execute(
                    text(
                        "INSERT INTO runs (id, experiment_id, name, status, start_ms, environment)"
                        " VALUES (:id, 1, :name, 'FINISHED', 1, '{}')"
                    ),
                    {"id": run_id, "name": name},
                )
            points = [  # a: step 2 is latest though logged first; b: a tie, the later row wins
                ("a" * 32, 0.9, 2, 5), ("a" * 32, 0.1, 1, 9), ("b" * 32, 0.2, 3, 7),
                ("b" * 32, 0.95, 3, 7),
            ]  # fmt: skip
            for run_id, value, step, stamp in points:
                conn.execute(
                    text(
                        "INSERT INTO run_metrics (run_id, key, value, step, timestamp_ms) "
                        "VALUES (:r, 'auc', :v, :s, :t)"
                    ),
                    {"r": run_id, "v": value, "s": step, "t": stamp},
                )
        assert migrate.upgrade(store.engine) == migrate.HEAD_REVISION
        tracking = LocalTracking(store)
        assert tracking.get_run("a" * 32).metrics == {"auc": 0.9}
        assert tracking.get_run("b" * 32).metrics == {"auc": 0.95}
        page = tracking.search_runs("e", "metrics.auc > 0.5", ["metrics.auc DESC"])
        assert [r.name for r in page.runs] == ["b", "a"]
        with pytest.raises(NotFound, match="No run with id 'nope'"):
            tracking.log_metrics("nope", [("auc", 1.0, 0, 1)])  # checked without the FK

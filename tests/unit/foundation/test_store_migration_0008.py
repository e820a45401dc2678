"""Migration 0008 on a store at 0007 that already holds a pipeline run: the trigger tables
appear, the run is untouched, and a trigger's firing can point at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from older_store import store_at
from sqlalchemy import inspect, text

from modelpilot.pipelines import get_pipeline_run
from modelpilot.store import migrate


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_upgrade_from_0007_adds_trigger_tables_and_keeps_pipeline_runs(
    tmp_path: Path, kind: str
) -> None:
    with store_at("0007", kind, tmp_path) as store:
        with store.engine.begin() as conn:
            assert not inspect(conn).has_table("triggers")
            conn.execute(
                text(
                    "INSERT INTO pipeline_runs (id, pipeline, target, state, params, executor,"
                    " created_ms) VALUES (:id, 'p', 'p.py:p', 'SUCCEEDED', '{}', 'inline', 1)"
                ),
                {"id": "a" * 32},
            )
        assert migrate.upgrade(store.engine) == migrate.HEAD_REVISION
        with store.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {"triggers", "trigger_firings"} <= tables
        assert get_pipeline_run(store, "a" * 8).pipeline == "p"

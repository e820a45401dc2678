"""Migration 0009 on a store at 0008 that holds a deployment: the policy table appears, the
deployment is untouched, and a policy revision can name it."""

from __future__ import annotations

from pathlib import Path

import pytest
from older_store import store_at
from sqlalchemy import insert, inspect, select, text

from modelpilot.store import migrate
from modelpilot.store.schema import ct_policies


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_upgrade_from_0008_adds_policy_table_and_keeps_deployments(
    tmp_path: Path, kind: str
) -> None:
    with store_at("0008", kind, tmp_path) as store:
        with store.engine.begin() as conn:
            assert not inspect(conn).has_table("ct_policies")
            conn.execute(
                text(
                    "INSERT INTO deployments (name, created_ms, revision, updated_ms)"
                    " VALUES ('web', 1, 1, 1)"
                )
            )
        assert migrate.upgrade(store.engine) == migrate.HEAD_REVISION
        with store.write() as conn:
            conn.execute(
                insert(ct_policies).values(
                    deployment="web", revision=1, created_ms=2, actor="a", source_path="l.yaml",
                    source="", policy={}, triggers=[],
                )
            )  # fmt: skip
        with store.read() as conn:
            assert conn.execute(text("SELECT revision FROM deployments")).scalar_one() == 1
            assert conn.execute(select(ct_policies.c.deployment)).scalar_one() == "web"

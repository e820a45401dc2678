"""Migrations and the table definitions agree; upgrades are idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from modelpilot.config import Settings
from modelpilot.store import Store, migrate
from modelpilot.store.schema import metadata


def test_migrated_database_matches_the_table_definitions(settings: Settings) -> None:
    store = Store.open(settings.resolved_store_uri())
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        diffs = [d for d in compare_metadata(context, metadata) if "optuna" not in str(d)]
    assert diffs == []
    assert migrate.upgrade(store.engine) == migrate.HEAD_REVISION  # second run: no-op
    assert migrate.is_current(store.engine)
    store.close()

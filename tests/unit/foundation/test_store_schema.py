"""Migrations and the table definitions agree; upgrades are idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from modelpilot.config import Settings
from modelpilot.store import Store, migrate
from modelpilot.store.schema import metadata


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
        return [d for d in compare_metadata(context, metadata) if "optuna" not in str(d)]


def _shape(engine: Engine) -> dict[str, object]:
    """Every table's columns (name, type, nullability), indexes, unique and foreign keys."""
    found = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
            sorted(
                (i["name"], tuple(i["column_names"]), i["unique"])
                for i in found.get_indexes(table)
            ),
            sorted(str(u) for u in found.get_unique_constraints(table)),
            sorted(str(f) for f in found.get_foreign_keys(table)),
            found.get_pk_constraint(table)["constrained_columns"],
        )
        for table in sorted(found.get_table_names())
    }  # fmt: skip


def test_the_migration_chain_matches_the_table_definitions(settings: Settings) -> None:
    """Existing stores reach the head through Alembic's chain; it must give the schema that
    the table definitions (and so a new store) have."""
    store = Store.open(settings.resolved_store_uri(), upgrade=False)
    migrate.run_migrations(store.engine)
    assert _differences(store.engine) == []
    assert migrate.upgrade(store.engine) == migrate.HEAD_REVISION  # second run: no-op
    assert migrate.is_current(store.engine)
    store.close()


def test_a_new_store_is_created_at_the_head_with_the_chains_schema(
    settings: Settings, tmp_path: Path
) -> None:
    """A new store skips the chain (tables created at once, stamped with the head): the same
    tables, columns, indexes and keys as a store that went through every migration."""
    new = Store.open(settings.resolved_store_uri())
    assert migrate.is_current(new.engine) and _differences(new.engine) == []
    chained = Store.open(f"sqlite:///{tmp_path / 'chained.db'}", upgrade=False)
    migrate.run_migrations(chained.engine)
    if new.engine.dialect.name == "sqlite":  # types and names compare within one dialect
        assert _shape(new.engine) == _shape(chained.engine)
    # a later migration starts from the stamp: Alembic reads the same version table
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    with new.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")  # a no-op, not a replay of 0001 on existing tables
    assert migrate.is_current(new.engine)
    new.close()
    chained.close()

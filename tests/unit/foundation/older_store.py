"""A store stopped at an older migration, for tests of the migrations that follow it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config

from modelpilot.store import Store, migrate
from mp_server import pg_schema


@contextmanager
def store_at(revision: str, kind: str, folder: Path) -> Iterator[Store]:
    """A store on SQLite in ``folder`` or a fresh PostgreSQL schema (``kind``), migrated to
    ``revision`` only; closed (and the schema dropped) at the end."""
    sqlite = nullcontext(f"sqlite:///{folder / 'mp.db'}")
    with pg_schema() if kind == "postgresql" else sqlite as uri:
        store = Store.open(uri, upgrade=False)
        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        try:
            yield store
        finally:
            store.close()

"""Schema migrations with Alembic, applied on first use and by ``modelpilot db upgrade``.

Checking the stored revision is one cheap query; Alembic itself is only imported when the
schema really is behind. Concurrent first uses serialise on a lock (a file lock for SQLite,
an advisory lock for PostgreSQL) so eight processes opening a fresh store do not race.

An empty database skips the migration chain: the tables are created from
:mod:`modelpilot.store.schema` in one transaction and stamped with the head revision
(Alembic's "building an up-to-date database from scratch"). Replaying the chain cost ~0.4 s
of table rebuilding per new store (every ``mp.init`` in a new folder, every test's store);
creating the tables costs ~0.05 s. tests/unit/foundation/test_store_schema.py checks that
the chain and the table definitions give the same schema, so both paths agree.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)

_log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD_REVISION = "0012"
# Our own name, not Alembic's default: Optuna (tuning) keeps its tables in the same database
# and runs its own Alembic migrations against "alembic_version".
VERSION_TABLE = "modelpilot_alembic_version"
_PG_LOCK_KEY = 0x6D70_0001  # arbitrary constant: "mp" + schema lock


def current_revision(conn: Connection) -> str | None:
    """The revision stored in our version table, or None for an empty database."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; return the revision now stored."""
    with _schema_lock(engine):
        with engine.connect() as conn:
            stored = current_revision(conn)
            if stored == HEAD_REVISION:
                return HEAD_REVISION
            empty = stored is None and not _our_tables(conn)
        if empty:
            _create_at_head(engine)
        else:
            run_migrations(engine)
        return HEAD_REVISION


def run_migrations(engine: Engine) -> None:
    """Apply Alembic's migration chain up to the head (the path of every existing store)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _our_tables(conn: Connection) -> set[str]:
    from modelpilot.store.schema import metadata

    return set(inspect(conn).get_table_names()) & set(metadata.tables)


def _create_at_head(engine: Engine) -> None:
    """The newest schema in one transaction, with the version table Alembic would write."""
    from modelpilot.store.schema import metadata

    version = Table(  # the shape of Alembic's own version table, so later upgrades read it
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    with engine.begin() as conn:
        metadata.create_all(conn)
        version.create(conn)
        conn.execute(version.insert().values(version_num=HEAD_REVISION))
    _log.info("Created a new store's schema at revision %s", HEAD_REVISION)


def is_current(engine: Engine) -> bool:
    """True when the stored revision is the newest one this code knows."""
    with engine.connect() as conn:
        return current_revision(conn) == HEAD_REVISION


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_suffix(".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

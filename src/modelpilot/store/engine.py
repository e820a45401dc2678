"""Engines and transactions for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: a deferred transaction that later wants to write can fail at once with
"database is locked" when another process committed in between, whatever the timeout says.
Taking the write lock up front makes concurrent writers queue instead of fail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from modelpilot.config import normalise_store_uri
from modelpilot.errors import InvalidInput, Unavailable

_WRITE_OPTION = "modelpilot_write"


def make_engine(uri: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """Create an engine for ``uri`` with modelpilot's connection settings.

    >>> make_engine("sqlite:///:memory:").dialect.name
    'sqlite'
    """
    uri = normalise_store_uri(uri)
    if uri.startswith("sqlite"):
        return _sqlite_engine(uri, busy_timeout_ms)
    if uri.startswith("postgresql"):
        return create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=5)
    raise InvalidInput(
        f"Unsupported store URI scheme in {uri.split('://', 1)[0]!r}: expected a path, "
        "'sqlite:///path/to/file.db' or 'postgresql://user@host:port/db'.",
        field="store_uri",
    )


def _sqlite_engine(uri: str, busy_timeout_ms: int) -> Engine:
    database = uri.split(":///", 1)[1] if ":///" in uri else ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # NullPool for files: a connection per use is cheap for SQLite and keeps forked worker
    # processes from sharing a connection; memory databases need the one shared connection.
    pool_args: dict[str, Any] = {} if database in ("", ":memory:") else {"poolclass": NullPool}
    engine = create_engine(
        uri,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        **pool_args,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One atomic write: commits on success, rolls back on any exception."""
    try:
        with engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise Unavailable(f"The metadata store is unavailable: {exc.orig}") from exc


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent read snapshot."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        raise Unavailable(f"The metadata store is unavailable: {exc.orig}") from exc

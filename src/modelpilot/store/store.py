"""The :class:`Store`: one engine, migrated on first use, with read and write transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from modelpilot.store import migrate
from modelpilot.store.engine import make_engine, read_transaction, write_transaction


class Store:
    """Metadata store handle.

    >>> store = Store.open("sqlite:///:memory:")
    >>> store.dialect
    'sqlite'
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, uri: str, *, busy_timeout_ms: int = 30_000, upgrade: bool = True) -> Store:
        """Connect to ``uri`` and, by default, bring its schema up to date."""
        store = cls(make_engine(uri, busy_timeout_ms=busy_timeout_ms))
        if upgrade:
            migrate.upgrade(store.engine)
        return store

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """An atomic write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with read_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def held_open(self) -> Iterator[None]:
        """Keep one idle connection to a SQLite file open while the block runs (a server).

        Why: each transaction gets its own connection (NullPool), and when the last one to a
        WAL database closes, SQLite checkpoints and removes the WAL: 5 to 15 ms per
        transaction. One idle connection held by a long-lived process turns that into about
        1 ms (benchmarks/tracking.py --server: start and end of a run). Not for processes
        that fork afterwards: a connection must not cross a fork.
        """
        if self.dialect != "sqlite":
            yield
            return
        # A raw connection in autocommit (the engine's connect hook): it holds no transaction,
        # so checkpoints are never held back by an old snapshot.
        keeper = self.engine.raw_connection()
        try:
            keeper.cursor().execute("SELECT 1").close()  # opens the file and its WAL
            yield
        finally:
            keeper.close()

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

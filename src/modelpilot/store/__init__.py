"""The metadata store: tables, migrations, engines and transactions.

Owns how metadata is persisted (SQLite by default, PostgreSQL for teams); never holds
business rules. Services receive a :class:`Store` and run their statements inside
``store.write()`` / ``store.read()`` transactions.
"""

from __future__ import annotations

from modelpilot.store.store import Store

__all__ = ["Store"]

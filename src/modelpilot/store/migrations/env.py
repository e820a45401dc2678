"""Alembic environment: runs migrations on the connection modelpilot hands it."""

from __future__ import annotations

from alembic import context

from modelpilot.store.migrate import VERSION_TABLE
from modelpilot.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("Run migrations with `modelpilot db upgrade`, not the alembic CLI.")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

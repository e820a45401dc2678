"""run owners by boot id and start ticks: a stepped wall clock no longer makes a live run's
process look like a different one (tracking/owner.py)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner_boot_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("owner_start_ticks", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner_start_ticks")
        batch.drop_column("owner_boot_id")

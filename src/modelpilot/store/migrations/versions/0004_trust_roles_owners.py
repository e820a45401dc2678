"""trusted types on versions, dataset roles, run owners

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(
            sa.Column("trusted_types", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("version_datasets") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=32), nullable=False, server_default="training")
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner_host", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("owner_start_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner_start_ms")
        batch.drop_column("owner_pid")
        batch.drop_column("owner_host")
    with op.batch_alter_table("version_datasets") as batch:
        batch.drop_column("role")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("trusted_types")

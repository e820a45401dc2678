"""pipeline triggers and their firings (modelpilot.pipelines.triggers)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("cooldown_ms", sa.BigInteger(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("daily_budget", sa.Integer(), nullable=False),
        sa.Column("since_event_id", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
    )
    op.create_index("ix_triggers_name", "triggers", ["name"], unique=True)
    op.create_table(
        "trigger_firings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("trigger_id", sa.String(length=32), nullable=False),
        sa.Column("trigger_name", sa.String(length=128), nullable=False),
        sa.Column("occurrence", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("decided_ms", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_firings")),
    )
    op.create_index(
        "ix_trigger_firings_occurrence",
        "trigger_firings",
        ["trigger_id", "occurrence"],
        unique=True,
    )
    op.create_index("ix_trigger_firings_decided", "trigger_firings", ["trigger_id", "decided_ms"])


def downgrade() -> None:
    op.drop_index("ix_trigger_firings_decided", table_name="trigger_firings")
    op.drop_index("ix_trigger_firings_occurrence", table_name="trigger_firings")
    op.drop_table("trigger_firings")
    op.drop_index("ix_triggers_name", table_name="triggers")
    op.drop_table("triggers")

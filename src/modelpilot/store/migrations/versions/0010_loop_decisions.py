"""continuous-training decisions and their steps (modelpilot.loop.decisions)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_decisions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("policy_revision", sa.Integer(), nullable=False),
        sa.Column("firing_id", sa.String(length=32), nullable=False),
        sa.Column("trigger_name", sa.String(length=128), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("candidate", sa.String(length=300), nullable=True),
        sa.Column("champion", sa.String(length=300), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_decisions")),
    )
    op.create_index("ix_loop_decisions_firing", "loop_decisions", ["firing_id"], unique=True)
    op.create_index("ix_loop_decisions_deployment", "loop_decisions", ["deployment", "created_ms"])
    op.create_index("ix_loop_decisions_state", "loop_decisions", ["state"])
    op.create_table(
        "loop_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_steps")),
    )
    op.create_index("ix_loop_steps_decision", "loop_steps", ["decision_id", "id"])


def downgrade() -> None:
    op.drop_table("loop_steps")
    op.drop_table("loop_decisions")

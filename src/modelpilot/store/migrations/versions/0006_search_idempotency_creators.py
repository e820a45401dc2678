"""latest metric per run (search), applied metric batches (idempotency), runs.created_by,
no per-row foreign key on run_metrics (checked once per batch instead)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The latest point per (run, key) among the points already stored: highest step, then newest
# time, then last inserted (tracking.service's rule).
_BACKFILL = """
INSERT INTO run_latest_metrics (run_id, key, value, step, timestamp_ms)
SELECT run_id, key, value, step, timestamp_ms FROM (
    SELECT run_id, key, value, step, timestamp_ms, ROW_NUMBER() OVER (
        PARTITION BY run_id, key ORDER BY step DESC, timestamp_ms DESC, id DESC
    ) AS rank
    FROM run_metrics
) ranked
WHERE rank = 1
"""


def upgrade() -> None:
    with op.batch_alter_table("run_metrics") as batch:
        batch.drop_constraint("fk_run_metrics_run_id_runs", type_="foreignkey")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=256), nullable=True))
        batch.create_index("ix_runs_experiment_start", ["experiment_id", "start_ms", "id"])
    op.create_table(
        "run_latest_metrics",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_latest_metrics_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_latest_metrics")),
    )
    op.create_index(
        "ix_run_latest_metrics_key_value", "run_latest_metrics", ["key", "value"], unique=False
    )
    op.execute(_BACKFILL)
    op.create_table(
        "applied_batches",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_applied_batches")),
    )
    op.create_index(
        op.f("ix_applied_batches_created_ms"), "applied_batches", ["created_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_applied_batches_created_ms"), table_name="applied_batches")
    op.drop_table("applied_batches")
    op.drop_index("ix_run_latest_metrics_key_value", table_name="run_latest_metrics")
    op.drop_table("run_latest_metrics")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_experiment_start")
        batch.drop_column("created_by")
    with op.batch_alter_table("run_metrics") as batch:
        batch.create_foreign_key("fk_run_metrics_run_id_runs", "runs", ["run_id"], ["id"])

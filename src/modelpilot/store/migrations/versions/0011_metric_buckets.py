"""per-metric summaries: whole-series min/max and step buckets (run_metric_buckets), so the
runs table's min/max and the run page's charts never read every point of a long series

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# tracking/points.py SUMMARY_WIDTHS: a migration keeps its own copy (it must not change later)
_WIDTHS = (0, 100, 1_000, 10_000, 100_000, 1_000_000)
# integer division truncates toward zero on PostgreSQL and SQLite alike, as points.py does
_BACKFILL = """
INSERT INTO run_metric_buckets
    (run_id, key, width, bucket, min_value, max_value, first_step, last_step, points)
SELECT run_id, key, {width}, {bucket}, MIN(value), MAX(value), MIN(step), MAX(step), COUNT(*)
FROM run_metrics
GROUP BY run_id, key{group}
"""


def upgrade() -> None:
    op.create_table(
        "run_metric_buckets",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("width", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "key", "width", "bucket", name=op.f("pk_run_metric_buckets")
        ),
    )
    for width in _WIDTHS:
        bucket = "0" if width == 0 else f"step / {width}"
        group = "" if width == 0 else f", {bucket}"  # GROUP BY 0 names a column in SQLite
        op.execute(_BACKFILL.format(width=width, bucket=bucket, group=group))


def downgrade() -> None:
    op.drop_table("run_metric_buckets")

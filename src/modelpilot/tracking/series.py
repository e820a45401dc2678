"""Reading a metric series for a chart without reading every point of a long one.

Every metric batch keeps per-bucket summaries of its series (``run_metric_buckets``, written
by :mod:`modelpilot.tracking.points`). A series of up to ``RAW_POINTS`` points is read whole;
a longer one is read from the narrowest bucket width that cuts its steps into at most
``max_points / 2`` buckets, each drawn as its lowest and highest value. A 1,000,000-point
series is then 1,000 rows instead of 1,000,000 (benchmarks/dashboard.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from modelpilot.store import Store
from modelpilot.store.schema import run_metric_buckets, run_metrics
from modelpilot.tracking.points import SUMMARY_WIDTHS

# Read whole up to this many points (tens of ms even on PostgreSQL); the caller downsamples.
RAW_POINTS = 50_000


@dataclass(frozen=True)
class ChartSeries:
    """Points to draw: every point (``is_exact``), or each bucket's lowest value at its first
    step and highest value at its last step (``bucket_width`` steps a bucket)."""

    steps: list[float]
    values: list[float]
    points: int  # in the whole series
    bucket_width: int | None = None

    @property
    def is_exact(self) -> bool:
        """True when every point of the series is here."""
        return self.bucket_width is None


def bucket_width_for(first_step: int, last_step: int, max_buckets: int) -> int:
    """The narrowest summary width cutting ``first_step..last_step`` into at most
    ``max_buckets`` buckets (the widest one when none does).

    >>> bucket_width_for(0, 999_999, 1000), bucket_width_for(0, 60_000, 1000)
    (1000, 100)
    """
    for width in SUMMARY_WIDTHS[1:]:
        if _bucket(last_step, width) - _bucket(first_step, width) + 1 <= max_buckets:
            return width
    return SUMMARY_WIDTHS[-1]


def _bucket(step: int, width: int) -> int:
    """``step / width`` truncated toward zero, as the summaries' buckets."""
    return step // width if step >= 0 else -(-step // width)


def chart_series(store: Store, run_id: str, key: str, max_points: int) -> ChartSeries | None:
    """The series of ``key`` in ``run_id`` for a chart of about ``max_points`` points; None
    when the run has no such metric."""
    with store.read() as conn:
        b = run_metric_buckets.c
        whole = conn.execute(
            select(b.first_step, b.last_step, b.points).where(
                b.run_id == run_id, b.key == key, b.width == 0
            )
        ).first()
        if whole is None:
            return None
        first, last, count = whole
        if count <= RAW_POINTS:
            rows = conn.execute(
                select(run_metrics.c.step, run_metrics.c.value)
                .where(run_metrics.c.run_id == run_id, run_metrics.c.key == key)
                .order_by(run_metrics.c.step, run_metrics.c.timestamp_ms, run_metrics.c.id)
            ).all()
            return ChartSeries([float(r.step) for r in rows], [r.value for r in rows], count)
        width = bucket_width_for(first, last, max(1, max_points // 2))
        steps: list[float] = []
        values: list[float] = []
        for _, low, high, first_step, last_step in _summary(conn, run_id, key, width):
            steps += [float(first_step), float(last_step)]
            values += [low, high]
    return ChartSeries(steps, values, count, width)


def _summary(
    conn: Connection, run_id: str, key: str, width: int
) -> list[tuple[int, float, float, int, int]]:
    """(bucket, min, max, first step, last step) of each bucket of ``width``, in step order."""
    b = run_metric_buckets.c
    columns = (b.bucket, b.min_value, b.max_value, b.first_step, b.last_step)
    query = select(*columns).where(b.run_id == run_id, b.key == key, b.width == width)
    return [tuple(r) for r in conn.execute(query.order_by(b.bucket)).all()]


__all__ = ["RAW_POINTS", "ChartSeries", "bucket_width_for", "chart_series"]

"""The summaries of metric series (``run_metric_buckets``): every batch keeps them equal to
what the stored points say, the runs table's min/max and a long series' chart read them, and
migration 0011 fills them in for points logged before it, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from older_store import store_at
from sqlalchemy import select, text

from modelpilot.config import Settings
from modelpilot.store import Store, migrate
from modelpilot.store.schema import run_metric_buckets
from modelpilot.tracking import service
from modelpilot.tracking.local import LocalTracking
from modelpilot.tracking.points import SUMMARY_WIDTHS, bucket_summaries
from modelpilot.tracking.series import RAW_POINTS, chart_series

Point = tuple[str, float, int, int]  # key, value, step, timestamp_ms
_points = st.lists(
    st.tuples(
        st.sampled_from(["loss", "auc"]),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.integers(-25_000, 25_000),
        st.integers(0, 10**12),
    ),
    min_size=1,
    max_size=40,
)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store.open(settings.resolved_store_uri())
    yield opened
    opened.close()


def _expected(run_id: str, points: list[Point]) -> set[tuple[object, ...]]:
    """Each bucket's summary computed from the points alone (truncating division)."""
    found: dict[tuple[str, int, int], list[tuple[float, int]]] = {}
    for key, value, step, _ in points:
        for width in SUMMARY_WIDTHS:
            bucket = 0 if width == 0 else int(step / width)
            found.setdefault((key, width, bucket), []).append((value, step))
    return {
        (run_id, key, width, bucket, min(v for v, _ in vs), max(v for v, _ in vs),
         min(s for _, s in vs), max(s for _, s in vs), len(vs))
        for (key, width, bucket), vs in found.items()
    }  # fmt: skip


def _stored(store: Store, run_id: str) -> set[tuple[object, ...]]:
    with store.read() as conn:
        rows = conn.execute(
            select(run_metric_buckets).where(run_metric_buckets.c.run_id == run_id)
        ).all()
    return {tuple(r) for r in rows}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(_points, min_size=1, max_size=4))
def test_summaries_after_any_batches_equal_the_points_aggregated(
    store: Store, batches: list[list[Point]]
) -> None:
    tracking = LocalTracking(store)
    run = tracking.create_run("summaries")
    for batch in batches:
        tracking.log_metrics(run.id, batch)
    every = [p for batch in batches for p in batch]
    assert _stored(store, run.id) == _expected(run.id, every)
    ranges = service.metric_ranges(store, [run.id])[run.id]
    for key in {p[0] for p in every}:
        values = [v for k, v, _, _ in every if k == key]
        assert ranges[key] == (min(values), max(values))


def test_a_long_series_is_charted_from_its_buckets_keeping_its_extremes(store: Store) -> None:
    tracking = LocalTracking(store)
    run = tracking.create_run("long")
    n = 2 * RAW_POINTS + 1_000
    points = [("loss", 1.0 / (1 + s), s, s) for s in range(n)]
    points[70_123] = ("loss", 50.0, 70_123, 70_123)  # one spike
    for start in range(0, n, 20_000):
        tracking.log_metrics(run.id, points[start : start + 20_000])
    series = chart_series(store, run.id, "loss", 2000)
    assert series is not None and not series.is_exact and series.points == n
    assert series.bucket_width == 1_000 and len(series.values) <= 2000
    assert max(series.values) == 50.0 and min(series.values) == 1.0 / n
    assert series.steps == sorted(series.steps) and series.steps[-1] == n - 1
    short = tracking.create_run("short")
    tracking.log_metrics(short.id, points[:10])
    exact = chart_series(store, short.id, "loss", 2000)
    assert exact is not None and exact.is_exact and exact.values == [p[1] for p in points[:10]]
    assert chart_series(store, short.id, "nope", 2000) is None


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_upgrade_0011_summarises_the_points_logged_before(tmp_path: Path, kind: str) -> None:
    run_id = "a" * 32
    points = [("loss", 0.5 - s / 100, s, s) for s in range(-15, 240)] + [("auc", 0.7, 3, 1)]
    with store_at("0010", kind, tmp_path) as store:
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO experiments (id, name, created_ms) VALUES (1, 'e', 1)"))
            conn.execute(
                text(
                    "INSERT INTO runs (id, experiment_id, name, status, start_ms, environment)"
                    " VALUES (:id, 1, 'r', 'FINISHED', 1, '{}')"
                ),
                {"id": run_id},
            )
            conn.execute(
                text(
                    "INSERT INTO run_metrics (run_id, key, value, step, timestamp_ms) "
                    "VALUES (:r, :k, :v, :s, :t)"
                ),
                [{"r": run_id, "k": k, "v": v, "s": s, "t": t} for k, v, s, t in points],
            )
        assert migrate.upgrade(store.engine) == migrate.HEAD_REVISION
        written = {tuple(r) for r in bucket_summaries([(run_id, *p) for p in points])}
        assert _stored(store, run_id) == written == _expected(run_id, points)

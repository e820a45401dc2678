"""Writing metric points: the bulk insert, the latest-value table, the series summaries and
idempotency keys.

One batch is one transaction: its points, the latest value of each (run, key) it touches
(``run_latest_metrics``, what run search filters and orders on), the min/max summaries of the
series and their step buckets (``run_metric_buckets``, what the runs table's min/max and the
run page's charts read) and, when the client sent one, its idempotency key
(``applied_batches``). A batch re-sent after its response was lost finds
its key and is skipped, so a retry never doubles a point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from modelpilot.clock import now_ms
from modelpilot.errors import NotFound, shown
from modelpilot.store import Store
from modelpilot.store.schema import applied_batches, runs

MetricRow = tuple[str, float, int, int]  # key, value, step, timestamp_ms

# How long an applied key is remembered. The client retries a batch for 30 s (client/http.py),
# and re-sends one kept in the SDK's buffer at the next flush; a day covers a long outage.
KEY_RETENTION_MS = 24 * 3600 * 1000

_COLUMNS = "run_id, key, value, step, timestamp_ms"
_UPSERT_LATEST = (
    f"INSERT INTO run_latest_metrics ({_COLUMNS}) VALUES ({{marks}}) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
    "timestamp_ms = excluded.timestamp_ms "
    "WHERE run_latest_metrics.step < excluded.step OR (run_latest_metrics.step = excluded.step "
    "AND run_latest_metrics.timestamp_ms <= excluded.timestamp_ms)"
)

# Bucket widths (in steps) of the summaries; 0 is the whole series. A chart of a series whose
# steps span R takes the narrowest width giving at most 1,000 buckets (tracking/series.py);
# only series over 50,000 points are read from buckets, so no width below 100 is kept (a
# width of 10 was ten times the rows, +50% on a 10,000-point batch on PostgreSQL).
SUMMARY_WIDTHS = (0, 100, 1_000, 10_000, 100_000, 1_000_000)
BucketRow = tuple[str, str, int, int, float, float, int, int, int]
_UPSERT_BUCKETS = (
    "INSERT INTO run_metric_buckets (run_id, key, width, bucket, min_value, max_value, "
    "first_step, last_step, points) VALUES ({marks}) "
    "ON CONFLICT (run_id, key, width, bucket) DO UPDATE SET "
    "min_value = {least}(run_metric_buckets.min_value, excluded.min_value), "
    "max_value = {greatest}(run_metric_buckets.max_value, excluded.max_value), "
    "first_step = {least}(run_metric_buckets.first_step, excluded.first_step), "
    "last_step = {greatest}(run_metric_buckets.last_step, excluded.last_step), "
    "points = run_metric_buckets.points + excluded.points"
)


def log_metric_batches(
    store: Store,
    batches: Mapping[str, Sequence[MetricRow]],
    *,
    batch_key: str | None = None,
) -> bool:
    """Append already-validated points for several runs in one transaction.

    With ``batch_key`` the batch is applied at most once: False means that key was applied
    before and nothing was written now.
    """
    payload = [(run_id, k, v, s, t) for run_id, rows in batches.items() for k, v, s, t in rows]
    if not payload:
        return True
    with store.write() as conn:
        require_runs(conn, [run_id for run_id, rows in batches.items() if rows])
        if batch_key is not None and not claim_key(conn, batch_key, next(iter(batches))):
            return False
        if store.dialect == "postgresql":
            _copy_points(conn, payload)
        else:
            conn.exec_driver_sql(
                f"INSERT INTO run_metrics ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", payload
            )
        mark = "?" if store.dialect == "sqlite" else "%s"
        conn.exec_driver_sql(
            _UPSERT_LATEST.format(marks=", ".join([mark] * 5)), latest_points(payload)
        )
        least, greatest = ("min", "max") if store.dialect == "sqlite" else ("LEAST", "GREATEST")
        upsert = _UPSERT_BUCKETS.format(marks=", ".join([mark] * 9), least=least, greatest=greatest)
        conn.exec_driver_sql(upsert, bucket_summaries(payload))
    return True


def bucket_summaries(payload: Sequence[tuple[str, str, float, int, int]]) -> list[BucketRow]:
    """The batch's summary of each (run, key) in every bucket of every ``SUMMARY_WIDTHS``
    width: (run, key, width, bucket, min, max, first step, last step, points). A bucket is
    ``step / width`` truncated toward zero, as SQL's integer division.

    >>> rows = bucket_summaries([("r", "l", 0.5, 30, 0), ("r", "l", 0.2, 120, 0), ("r", "l", 0.9, 150, 0)])
    >>> [row for row in rows if row[2] <= 100]
    [('r', 'l', 0, 0, 0.2, 0.9, 30, 150, 3), ('r', 'l', 100, 0, 0.5, 0.5, 30, 30, 1), ('r', 'l', 100, 1, 0.2, 0.9, 120, 150, 2)]
    """  # noqa: E501
    series: dict[tuple[str, str], tuple[list[float], list[int]]] = {}
    for run_id, key, value, step, _ in payload:
        values, steps = series.setdefault((run_id, key), ([], []))
        values.append(value)
        steps.append(step)
    out: list[BucketRow] = []
    for (run_id, key), (values, steps) in series.items():
        v, st = np.asarray(values, dtype=np.float64), np.asarray(steps, dtype=np.int64)
        for width in SUMMARY_WIDTHS:
            out += [(run_id, key, width, *row) for row in _buckets(v, st, width)]
    return out


def _buckets(
    values: np.ndarray, steps: np.ndarray, width: int
) -> list[tuple[int, float, float, int, int, int]]:
    """(bucket, min, max, first step, last step, points) of each bucket holding points."""
    buckets = np.zeros_like(steps) if width == 0 else np.sign(steps) * (np.abs(steps) // width)
    order = np.argsort(buckets, kind="stable")
    b, v, s = buckets[order], values[order], steps[order]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    counts = np.diff(np.r_[starts, len(b)])
    columns = (
        b[starts],
        np.minimum.reduceat(v, starts),
        np.maximum.reduceat(v, starts),
        np.minimum.reduceat(s, starts),
        np.maximum.reduceat(s, starts),
        counts,
    )
    return [
        (int(bk), float(lo), float(hi), int(first), int(last), int(n))
        for bk, lo, hi, first, last, n in zip(*columns, strict=True)
    ]


def require_runs(conn: Connection, run_ids: Sequence[str]) -> None:
    """NotFound unless every run exists; on PostgreSQL the rows are share-locked until the
    batch commits (what the foreign key did, once per batch instead of once per point)."""
    query = select(runs.c.id).where(runs.c.id.in_(list(run_ids)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True, read=True)
    found = set(conn.execute(query).scalars())
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        raise NotFound(f"No run with id {shown(missing[0])}.", field="run_id")


def latest_points(
    payload: Sequence[tuple[str, str, float, int, int]],
) -> list[tuple[str, str, float, int, int]]:
    """The latest point of each (run, key) in a batch: highest step, then newest time, then
    the later one in the batch (as if inserted last).

    >>> latest_points([("r", "loss", 1.0, 0, 5), ("r", "loss", 0.5, 1, 1), ("r", "loss", 0.7, 1, 1)])
    [('r', 'loss', 0.7, 1, 1)]
    """  # noqa: E501
    best: dict[tuple[str, str], tuple[str, str, float, int, int]] = {}
    get = best.get
    for row in payload:
        group = row[:2]
        known = get(group)
        if known is None or row[3] > known[3] or (row[3] == known[3] and row[4] >= known[4]):
            best[group] = row
    return list(best.values())


def claim_key(conn: Connection, key: str, run_id: str) -> bool:
    """Record ``key`` as applied in this transaction; False when it was applied already.

    Two requests with the same key serialise on its primary key: the second waits for the
    first to commit, then finds the key."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(applied_batches)
        .values(key=key, run_id=run_id, created_ms=now_ms())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(applied_batches.c.key)  # rowcount is -1 on psycopg here; a row is not
    ).first()
    return inserted is not None


def applied_run(conn: Connection, key: str) -> str | None:
    """The run recorded with an applied key (a run creation replayed), or None."""
    return conn.execute(
        select(applied_batches.c.run_id).where(applied_batches.c.key == key)
    ).scalar_one_or_none()


def prune_keys(store: Store, *, now: int | None = None) -> int:
    """Forget applied keys older than :data:`KEY_RETENTION_MS`; returns how many went."""
    cutoff = (now if now is not None else now_ms()) - KEY_RETENTION_MS
    with store.write() as conn:
        result = conn.execute(delete(applied_batches).where(applied_batches.c.created_ms < cutoff))
    return int(result.rowcount)


def _copy_points(conn: Connection, payload: Sequence[tuple[str, str, float, int, int]]) -> None:
    """PostgreSQL's COPY, fed one block of text: several times faster than a multi-row INSERT
    or than ``write_row`` per point for 10,000 points (benchmarks/tracking.py --server)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY run_metrics ({_COLUMNS}) FROM STDIN") as copy:
            copy.write(copy_block(payload))
    finally:
        cursor.close()


def copy_block(payload: Sequence[tuple[str, str, float, int, int]]) -> bytes:
    """The rows as COPY's text format (tab-separated, one line each).

    orjson writes the rows as JSON, the shortest text that reads back as the same float as
    ``repr`` does, ten times faster than formatting them here; its punctuation then becomes
    tabs and newlines. Safe because run ids are hex, keys passed check_key (letters, digits
    and ``_-. /:``: never a quote, comma, bracket, tab, newline or backslash), values are
    finite floats and steps and times integers. A step beyond 64 bits (refused by the table's
    BIGINT anyway) is formatted one row at a time, as before.

    >>> copy_block([("r1", "val/loss", 0.5, 3, 1700000000000), ("r1", "val/loss", 1e-05, 4, 5)])
    b'r1\\tval/loss\\t0.5\\t3\\t1700000000000\\nr1\\tval/loss\\t0.00001\\t4\\t5\\n'
    """
    try:
        blob = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return "".join(f"{r}\t{k}\t{v!r}\t{s}\t{t}\n" for r, k, v, s, t in payload).encode()
    lines = blob[2:-2].replace(b"],[", b"\n").replace(b'"', b"").replace(b",", b"\t")
    return lines + b"\n"


__all__ = [
    "KEY_RETENTION_MS",
    "SUMMARY_WIDTHS",
    "applied_run",
    "bucket_summaries",
    "claim_key",
    "copy_block",
    "latest_points",
    "log_metric_batches",
    "prune_keys",
    "require_runs",
]

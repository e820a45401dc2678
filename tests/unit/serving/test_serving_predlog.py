"""The prediction log: Parquet segments, sync write-ahead files, recovery, DuckDB reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelpilot.errors import InvalidInput, NotFound
from modelpilot.serving.predlog import PredictionLog, query, read_predictions, recover_wal_files


def _rows(model: str, ids: range, timestamp_ms: int = 1_700_000_000_000) -> list[dict[str, object]]:
    return [
        {
            "request_id": f"r{i}",
            "row": 0,
            "timestamp_ms": timestamp_ms + i,
            "model": model,
            "version": 1,
            "latency_ms": 1.5,
            "in.age": i,
            "out.prediction": 2.0 * i,
        }
        for i in ids
    ]


def test_async_rows_reach_parquet_on_flush_and_read_back_as_one_view(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, durability="async", flush_interval_s=3600)
    log.start()
    log.append(_rows("churn", range(3)))
    log.append(_rows("fraud", range(3, 5)))
    assert log.flush() == 5
    log.append(_rows("churn", range(5, 7)))
    log.close()  # flushes the rest
    assert sorted(p.parent.name for p in tmp_path.glob("*/seg-*.parquet")) == [
        "churn",
        "churn",
        "fraud",
    ]
    counts = query(tmp_path, "SELECT model, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1")
    assert counts.to_dict("records") == [{"model": "churn", "n": 5}, {"model": "fraud", "n": 2}]
    churn = read_predictions(tmp_path, model="churn")
    assert list(churn["request_id"]) == ["r0", "r1", "r2", "r5", "r6"]
    assert list(churn["out.prediction"]) == [0.0, 2.0, 4.0, 10.0, 12.0]


def test_sync_rows_are_on_disk_before_append_returns_and_survive_a_crash(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, durability="sync", flush_interval_s=3600)
    log.start()
    log.append(_rows("churn", range(4)))
    # the process "dies" here: no flush, no close; only the write-ahead file exists
    assert not list(tmp_path.glob("**/seg-*.parquet"))
    (wal,) = tmp_path.glob("wal-*.jsonl")
    assert len(wal.read_bytes().splitlines()) == 4
    with wal.open("ab") as handle:
        handle.write(b'{"request_id": "torn')  # a write cut short by the crash
    assert recover_wal_files(tmp_path) == 4  # what the next server start does
    assert not list(tmp_path.glob("wal-*.jsonl"))
    assert list(read_predictions(tmp_path)["request_id"]) == ["r0", "r1", "r2", "r3"]


def test_sync_close_converts_the_write_ahead_file_and_leaves_none(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, durability="sync", flush_interval_s=3600)
    log.start()
    log.append(_rows("churn", range(3)))
    log.close()
    assert not list(tmp_path.glob("wal-*"))
    assert len(read_predictions(tmp_path, model="churn")) == 3


def test_read_predictions_filters_by_model_and_time(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    log.start()
    log.append(_rows("churn", range(10), timestamp_ms=1_700_000_000_000))
    log.close()
    since = pd.Timestamp(1_700_000_000_005, unit="ms")  # naive times are UTC
    assert list(read_predictions(tmp_path, model="churn", since=since)["request_id"]) == [
        "r5",
        "r6",
        "r7",
        "r8",
        "r9",
    ]
    assert read_predictions(tmp_path, model="fraud").empty
    assert read_predictions(tmp_path / "nothing-yet").empty


def test_queries_explain_an_empty_log_and_bad_sql(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="No prediction log segments under"):
        query(tmp_path, "SELECT 1")
    log = PredictionLog(tmp_path)
    log.start()
    log.append(_rows("churn", range(1)))
    log.close()
    with pytest.raises(InvalidInput, match="The query failed"):
        query(tmp_path, "SELECT nope FROM predictions")

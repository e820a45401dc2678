"""The prediction log: Parquet segments, sync write-ahead files, recovery, DuckDB reads."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.errors import InvalidInput, NotFound
from modelpilot.predictions import (
    LogBatch,
    PredictionLog,
    read_predictions,
    recover_wal_files,
)
from modelpilot.predictions.sql import query


def _rows(model: str, ids: range, timestamp_ms: int = 1_700_000_000_000) -> LogBatch:
    (batch,) = LogBatch.from_rows(
        [
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
    )
    return batch


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


CRASHING_WRITER = """
import os, signal, sys
from pathlib import Path
from modelpilot.predictions import LogBatch, PredictionLog
log = PredictionLog(Path(sys.argv[1]), durability="sync", flush_interval_s=3600)
log.start()
(batch,) = LogBatch.from_rows(
    [{"model": "churn", "request_id": f"r{i}", "timestamp_ms": i, "in.age": i} for i in range(4)]
)
log.append(batch)
(wal,) = Path(sys.argv[1]).glob("wal-*.jsonl")
with wal.open("ab") as handle:
    handle.write(b'{"model": "churn", "size": 2, "colu')  # a write cut short by the crash
os.kill(os.getpid(), signal.SIGKILL)  # no flush, no close
"""


def test_sync_rows_are_on_disk_before_append_returns_and_survive_a_crash(tmp_path: Path) -> None:
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(tmp_path)], timeout=120)
    assert crashed.returncode == -signal.SIGKILL
    assert not list(tmp_path.glob("**/seg-*.parquet"))
    (wal,) = tmp_path.glob("wal-*.jsonl")
    assert len(wal.read_bytes().splitlines()) == 2  # one line per batch, plus the torn one
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


def test_batches_with_arrays_mixed_columns_and_old_row_lines_all_reach_the_view(
    tmp_path: Path,
) -> None:
    log = PredictionLog(tmp_path, durability="sync", flush_interval_s=3600)
    log.start()
    log.append(
        LogBatch(
            "churn",
            2,
            {
                "request_id": ["a", "b"],
                "timestamp_ms": np.array([1, 2]),
                "version": np.array([1, 1]),
                "in.age": np.array([[30.0, 1.0], [40.0, 2.0]]).T[0],  # a strided view
                "out.prediction": np.array(["stay", "leave"], dtype=object),
                "error": [None, None],
            },
        )
    )
    log.append(
        LogBatch(
            "churn",
            1,
            {"request_id": ["c"], "timestamp_ms": [3], "version": [2], "in.plan": ["pro"]},
        )
    )
    (wal,) = tmp_path.glob("wal-*.jsonl")
    with wal.open("ab") as handle:  # a line as earlier versions wrote them: one row
        handle.write(
            b'{"request_id": "d", "model": "churn", "timestamp_ms": 4, "version": 1, '
            b'"in.age": 50.0}\n'
        )
    log.close()
    got = read_predictions(tmp_path, model="churn").sort_values("request_id")
    assert list(got["request_id"]) == ["a", "b", "c", "d"]
    assert got["in.age"].tolist()[:2] == [30.0, 40.0] and got["in.age"].tolist()[3] == 50.0
    assert got["out.prediction"].tolist()[:2] == ["stay", "leave"]
    assert got["in.plan"].tolist()[2] == "pro" and got["version"].tolist() == [1, 1, 2, 1]

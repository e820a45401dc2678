"""Several writers on one prediction-log folder: no one converts a live WAL; errors are reported."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from modelpilot.predictions import (
    LogBatch,
    PredictionLog,
    read_predictions,
    recover_wal_files,
)
from modelpilot.serving.metrics import ServingMetrics


def _batch(ids: range) -> LogBatch:
    (batch,) = LogBatch.from_rows(
        [{"model": "churn", "request_id": f"r{i}", "timestamp_ms": i, "in.age": i} for i in ids]
    )
    return batch


def test_a_starting_writer_leaves_a_live_writers_wal_alone_even_with_the_same_pid(
    tmp_path: Path,
) -> None:
    # Two logs in one process share a process id, as two containers' PID-1 servers do.
    first = PredictionLog(tmp_path, durability="sync", flush_interval_s=3600)
    first.start()
    first.append(_batch(range(0, 5)))
    second = PredictionLog(tmp_path, durability="sync", flush_interval_s=3600)
    second.start()  # recovers only WAL files nobody holds
    first.append(_batch(range(5, 10)))
    second.append(_batch(range(10, 15)))
    first.close()
    second.close()
    logged = Counter(read_predictions(tmp_path, model="churn")["request_id"])
    assert logged == Counter(f"r{i}" for i in range(15))
    assert list(tmp_path.glob("wal-*")) == []


def test_a_failed_flush_is_counted_logged_and_retried_without_losing_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(tmp_path, durability="async", flush_interval_s=3600)
    log.start()
    metrics = ServingMetrics(log=log)
    log.append(_batch(range(3)))
    blocker = tmp_path / "churn"  # a file where the model's segment folder must go
    blocker.write_text("in the way")
    with caplog.at_level(logging.ERROR), pytest.raises(FileExistsError):
        log.flush()
    assert "Prediction log flush into" in caplog.text and "FileExistsError" in caplog.text
    assert "modelpilot_prediction_log_flush_errors_total 1.0" in metrics.render().decode()
    blocker.unlink()
    assert log.flush() == 3  # the rows of the failed flush were kept
    log.close()
    assert sorted(read_predictions(tmp_path)["request_id"]) == ["r0", "r1", "r2"]


def test_a_wal_converted_twice_after_a_crash_is_logged_once(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, durability="sync", flush_interval_s=3600)
    log.start()
    log.append(_batch(range(4)))
    (wal,) = tmp_path.glob("wal-*.jsonl")
    saved = wal.read_bytes()
    log.close()  # converts and deletes the WAL
    wal.write_bytes(saved)  # as if the process had died between writing segments and unlinking
    assert recover_wal_files(tmp_path) == 4
    assert sorted(read_predictions(tmp_path)["request_id"]) == ["r0", "r1", "r2", "r3"]

"""Column policies applied by the prediction log; key file; file modes; purge by date."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from modelpilot.predictions import LogBatch, PredictionLog, read_predictions, write_segments
from modelpilot.predictions.log_policy import (
    HASH_HEX_CHARS,
    REDACTED,
    LogPolicy,
    LogPrivacy,
    PolicySet,
    hash_values,
    load_hash_key,
)
from modelpilot.predictions.retention import DAY_MS, purge_expired, purge_segments

KEY = b"k" * 32


def _batch(
    model: str = "churn",
    deployments: list[str | None] | None = None,
    timestamp_ms: int = 1_700_000_000_000,
) -> LogBatch:
    size = 3 if deployments is None else len(deployments)
    return LogBatch(
        model,
        size,
        {
            "request_id": [f"r{i}" for i in range(size)],
            "timestamp_ms": np.full(size, timestamp_ms, dtype=np.int64),
            "deployment": deployments or [None] * size,
            "in.email": ["ada@example.org", "bob@example.org", "ada@example.org"][:size],
            "in.name": ["Ada", "Bob", None][:size],
            "in.ssn": ["078-05-1120"] * size,
            "in.age": np.array([36.0, 41.0, 36.0])[:size],
            "out.prediction": np.arange(size, dtype=np.float64),
        },
    )


POLICY = LogPolicy(columns={"email": "hash", "name": "redact", "ssn": "drop", "age": "hash"})


def test_hash_redact_drop_and_keep_each_do_what_they_say() -> None:
    privacy = LogPrivacy(KEY, PolicySet({"churn": POLICY}))
    (out,) = privacy.apply(_batch())
    emails = out.columns["in.email"]
    assert emails[0] == emails[2] != emails[1]  # equal inputs, equal hashes: joins work
    assert all(len(e) == HASH_HEX_CHARS and "@" not in e for e in emails)
    assert out.columns["in.name"] == [REDACTED, REDACTED, None]
    assert "in.ssn" not in out.columns
    assert out.columns["request_id"] == ["r0", "r1", "r2"]  # labels still join
    np.testing.assert_array_equal(out.columns["out.prediction"], [0.0, 1.0, 2.0])


def test_another_model_and_an_empty_policy_set_are_untouched() -> None:
    other, churn = _batch(model="other"), _batch()
    assert LogPrivacy(KEY, PolicySet({"churn": POLICY})).apply(other)[0] is other
    assert LogPrivacy(KEY).apply(churn)[0] is churn


def test_hashes_depend_on_the_key() -> None:
    assert hash_values(b"a", ["x"]) != hash_values(b"b", ["x"])


def test_a_deployment_policy_overrides_the_model_policy_for_its_rows_only() -> None:
    policies = PolicySet(
        {"churn": LogPolicy(columns={"email": "hash"})},
        {"prod": LogPolicy(columns={"email": "drop"})},
    )
    parts = LogPrivacy(KEY, policies).apply(_batch(deployments=["prod", None, "prod"]))
    by_deployment = {p.columns["deployment"][0]: p for p in parts}
    assert "in.email" not in by_deployment["prod"].columns
    assert by_deployment["prod"].size == 2
    assert len(by_deployment[None].columns["in.email"][0]) == HASH_HEX_CHARS


def test_policy_rejects_unknown_actions_and_bad_retention() -> None:
    with pytest.raises(ValidationError, match="keep"):
        LogPolicy(columns={"email": "encrypt"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        LogPolicy(retention_days=0)


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = load_hash_key(tmp_path)
    finally:
        os.umask(old)
    path = tmp_path / "predlog-hash.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_hash_key(tmp_path) == key and len(key) == 64
    assert load_hash_key(tmp_path, "configured") == b"configured"


@pytest.mark.parametrize("durability", ["async", "sync"])
def test_log_files_are_0600_and_hold_no_raw_value(tmp_path: Path, durability: str) -> None:
    old = os.umask(0o002)  # a permissive umask must not widen the modes
    try:
        plog = PredictionLog(
            tmp_path,
            durability=durability,  # type: ignore[arg-type]
            privacy=LogPrivacy(KEY, PolicySet({"churn": POLICY})),
        )
        plog.start()
        plog.append(_batch())
        if durability == "sync":
            (wal,) = tmp_path.glob("wal-*.jsonl")
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            assert b"ada@example.org" not in wal.read_bytes()
        plog.close()
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        data = path.read_bytes()
        for raw in (b"ada@example.org", b"078-05-1120", b"Bob"):
            assert raw not in data, (path, raw)
    frame = read_predictions(tmp_path)
    assert frame["in.email"].nunique() == 2 and "in.ssn" not in frame


def test_purge_before_a_date_deletes_only_older_segments(tmp_path: Path) -> None:
    day = 1_700_000_000_000
    write_segments(tmp_path, [_batch(timestamp_ms=day - 3 * DAY_MS)])
    write_segments(tmp_path, [_batch(timestamp_ms=day - DAY_MS)])
    write_segments(tmp_path, [_batch(timestamp_ms=day + DAY_MS)])
    dry = purge_segments(tmp_path, day, dry_run=True)
    assert len(dry.removed) == 2 and dry.rows_removed == 6
    assert len(list(tmp_path.rglob("seg-*.parquet"))) == 3
    done = purge_segments(tmp_path, day)
    assert len(done.removed) == 2 and done.kept == 1
    (left,) = tmp_path.rglob("seg-*.parquet")
    assert pq.read_table(left).column("timestamp_ms").to_pylist() == [day + DAY_MS] * 3
    assert len(read_predictions(tmp_path)) == 3


def test_retention_keeps_segments_of_rows_without_a_retention(tmp_path: Path) -> None:
    now = 1_700_000_000_000
    old = now - 40 * DAY_MS
    write_segments(tmp_path, [_batch(timestamp_ms=old, deployments=["prod"] * 3)])
    write_segments(tmp_path, [_batch(timestamp_ms=old, deployments=["prod", None, None])])
    write_segments(tmp_path, [_batch(timestamp_ms=now - DAY_MS, deployments=["prod"] * 3)])
    policies = PolicySet(deployments={"prod": LogPolicy(retention_days=30)})
    result = purge_expired(tmp_path, policies, now)
    assert result.rows_removed == 3 and result.kept == 2

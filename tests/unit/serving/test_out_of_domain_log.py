"""The log's out-of-domain fields read back by column and kind, old rows (bare names) too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.clock import since_ms
from modelpilot.predictions import LogBatch, PredictionReader, write_segments
from modelpilot.predictions.domain_fields import (
    DOMAIN_FLAG_KINDS,
    format_domain_fields,
    parse_domain_fields,
)


def _batch(model: str, fields: list[str | None], stamp_ms: int) -> LogBatch:
    size = len(fields)
    return LogBatch(
        model,
        size,
        {
            "request_id": [f"{model}-{stamp_ms}-{i}" for i in range(size)],
            "timestamp_ms": np.full(size, stamp_ms, dtype=np.int64),
            "out_of_domain": np.array([f is not None for f in fields]),
            "out_of_domain_fields": fields,
        },
    )


def test_counts_by_column_and_kind_read_old_and_new_rows(tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    now = since_ms("0s")
    write_segments(folder, [_batch("churn", ["age,plan", None], now - 10)])  # before kinds
    write_segments(
        folder,
        [
            _batch("churn", ["age:out_of_range", "age:out_of_range,plan:unseen_category"], now),
            _batch("other", ["x:unexpected_null"], now),
            _batch("churn", ["age:out_of_range"], now - 10 * 86_400_000),  # ten days ago
        ],
    )
    reader = PredictionReader(folder)
    table = reader.out_of_domain(model="churn", since="1d")
    assert table.values.tolist() == [
        ["churn", "age", "out_of_range", 2],
        ["churn", "age", "unknown", 1],
        ["churn", "plan", "unknown", 1],
        ["churn", "plan", "unseen_category", 1],
    ]
    assert len(reader.out_of_domain()) == 5  # every model, all time


def test_a_log_without_domain_flags_reads_as_none(tmp_path: Path) -> None:
    assert PredictionReader(tmp_path / "empty").out_of_domain().empty
    batch = LogBatch("m", 1, {"request_id": ["r"], "timestamp_ms": np.array([1])})
    write_segments(tmp_path / "p", [batch])
    assert PredictionReader(tmp_path / "p").out_of_domain().empty


names = st.text(st.characters(blacklist_characters=","), min_size=1, max_size=12)


@given(st.lists(st.tuples(names, st.sampled_from(DOMAIN_FLAG_KINDS)), min_size=1, max_size=6))
def test_fields_round_trip(flags: list[tuple[str, str]]) -> None:
    assert parse_domain_fields(format_domain_fields(flags)) == flags

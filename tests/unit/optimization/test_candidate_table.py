"""The candidate table's Pareto mark and load-memory measurement."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.optimization.measure import load_peak_bytes
from modelpilot.optimization.table import CandidateRow, mark_pareto

_value = st.one_of(st.none(), st.floats(0.001, 1000, allow_nan=False))


@st.composite
def _rows(draw: st.DrawFn) -> list[CandidateRow]:
    count = draw(st.integers(1, 6))
    rows = []
    for i in range(count):
        speed = {"p50_ms_1": draw(_value), "rows_per_s_64": draw(_value)}
        rows.append(
            CandidateRow(
                f"m/{i + 1}",
                "source" if i == 0 else "onnx",
                "onnx",
                "source" if i == 0 else "passed",
                draw(st.one_of(st.none(), st.integers(1, 10**9))),
                {k: v for k, v in speed.items() if v is not None},
                holdout_metric=draw(st.floats(0, 1)),
                load_peak_bytes=draw(st.one_of(st.none(), st.integers(0, 10**9))),
            )
        )
    return rows


def _better_or_equal_everywhere(a: CandidateRow, b: CandidateRow) -> bool:
    """a is at least as good as b on every objective both have, and better on one."""
    pairs = [
        (a.size_bytes, b.size_bytes, 1),
        (a.load_peak_bytes, b.load_peak_bytes, 1),
        (a.speed.get("p50_ms_1"), b.speed.get("p50_ms_1"), 1),
        (a.speed.get("rows_per_s_64"), b.speed.get("rows_per_s_64"), -1),
        (a.holdout_metric, b.holdout_metric, -1),
    ]
    known = [(sign * x, sign * y) for x, y, sign in pairs if x is not None and y is not None]
    return bool(known) and all(x <= y for x, y in known) and any(x < y for x, y in known)


@given(_rows())
def test_a_row_is_marked_pareto_exactly_when_no_other_row_dominates_it(
    rows: list[CandidateRow],
) -> None:
    marked = mark_pareto(rows)
    for row in marked:
        dominated = any(_better_or_equal_everywhere(other, row) for other in marked)
        assert row.pareto is (not dominated)
    assert [r.ref for r in marked] == [r.ref for r in rows]


def test_the_smaller_faster_better_candidate_is_the_only_one_on_the_front() -> None:
    source = CandidateRow("m/1", "source", "sklearn", "source", 500, {"p50_ms_1": 1.0})
    onnx = CandidateRow("m/2", "onnx", "onnx", "passed", 100, {"p50_ms_1": 0.1})
    source = CandidateRow(**{**source.__dict__, "holdout_metric": 0.9})
    onnx = CandidateRow(**{**onnx.__dict__, "holdout_metric": 0.9})
    assert [r.pareto for r in mark_pareto([source, onnx])] == [False, True]


def test_load_peak_counts_what_loading_allocates_natively() -> None:
    held: list[np.ndarray] = []

    def load() -> np.ndarray:
        array = np.ones(64 * 2**20 // 8)  # 64 MiB, allocated and touched by NumPy's C code
        held.append(array)
        return array

    grew = load_peak_bytes(load)
    assert grew is not None and grew >= 60 * 2**20
    small = load_peak_bytes(lambda: [1, 2, 3])
    assert small is not None and small < 8 * 2**20

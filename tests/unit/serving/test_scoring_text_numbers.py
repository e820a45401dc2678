"""Numbers a CSV reader left as text: parsed back, or the first value that is not one named."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.models.signature import ColumnSpec
from modelpilot.serving.scoring import numbers_from_text

NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(10**12), 10**12),
)
NOT_NUMBERS = st.sampled_from(["oops", "1_000", "1,5", "n/a?", "--1", "1e", "12abc", "\u00bd"])


def _model(dtype: str = "float64") -> Any:
    return SimpleNamespace(signature=SimpleNamespace(inputs=[ColumnSpec("x", dtype, True)]))  # type: ignore[arg-type]


def _text(values: list[Any]) -> pa.Table:
    return pa.table({"x": pa.array([None if v is None else f" {v!r} " for v in values])})


@given(st.lists(NUMBERS, min_size=1, max_size=50), st.integers(0, 10**6))
def test_text_of_numbers_reads_as_those_numbers(values: list[Any], offset: int) -> None:
    parsed = numbers_from_text(_model(), _text(values), offset).column("x").to_pylist()
    assert parsed == [None if v is None else float(v) for v in values]


@given(st.lists(NUMBERS, min_size=1, max_size=50), st.data(), st.integers(0, 10**6))
def test_the_first_value_that_is_not_a_number_is_named_with_its_file_row(
    values: list[Any], data: st.DataObject, offset: int
) -> None:
    position = data.draw(st.integers(0, len(values)))
    bad = data.draw(NOT_NUMBERS)
    table = pa.table({"x": pa.array([*(map(_shown, values[:position])), bad,
                                     *(map(_shown, values[position:]))])})  # fmt: skip
    with pytest.raises(InvalidInput) as info:
        numbers_from_text(_model("int64"), table, offset)
    assert info.value.field == "x"
    assert f"column 'x' (file row {offset + position}): expected a number (int64)" in (
        info.value.message
    )
    assert repr(bad) in info.value.message or bad in info.value.message


def test_columns_already_numeric_or_not_numeric_in_the_signature_are_left_alone() -> None:
    numeric = pa.table({"x": pa.array(np.arange(3.0))})
    assert numbers_from_text(_model(), numeric, 0) is numeric
    text = pa.table({"x": pa.array(["a", "b"])})
    assert numbers_from_text(_model("string"), text, 0) is text


def _shown(value: Any) -> str | None:
    return None if value is None else repr(value)

"""The one-pass decoder of the usual /predict body: it takes only what the checked path takes,
gives the same rows, and leaves everything else (with its named errors) to that path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving.app import DataPlane
from modelpilot.serving.records_decoder import records_decoder
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.serving.settings import ServingSettings
from modelpilot.serving.validation import RequestValidator

NAMES = ["age", "income", "é x"]  # any text is a column name, not only identifiers
SIGNATURE = Signature(
    "columns", inputs=tuple(ColumnSpec(n, "float64") for n in NAMES), output_dtype="float64"
)
DECODE = records_decoder(NAMES)
CHECKED = RequestValidator(SIGNATURE)
MAX_ROWS = 8


def taken(body: bytes) -> list[list[float]] | None:
    """What the one-pass decoder makes of a body, its rows (tuples) as lists to compare."""
    rows = DECODE(body, MAX_ROWS)
    return None if rows is None else [list(row) for row in rows]


def checked_rows(body: bytes) -> list[list[float]] | None:
    """What orjson and the validator make of a list-of-records body (None: refused)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not list or len(doc) > MAX_ROWS:
        return None
    try:
        return [[float(v) for v in row] for row in CHECKED.from_records(doc, from_json=True)]
    except InvalidInput:
        return None


values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
)
keys = st.sampled_from([*NAMES, "zip", "AGE"])
records = st.lists(st.dictionaries(keys, values, max_size=5), max_size=MAX_ROWS + 2)


@given(records, st.booleans())
def test_what_it_takes_the_checked_path_takes_with_the_same_rows(
    docs: list[dict[str, Any]], spaced: bool
) -> None:
    body = json.dumps(docs, indent=1 if spaced else None).encode()
    fast = taken(body)
    if fast is not None:
        assert fast == checked_rows(body)


finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)
numbers = st.one_of(finite, st.integers(min_value=-(2**63), max_value=2**64 - 1))


@given(st.lists(st.fixed_dictionaries({n: numbers for n in NAMES}), min_size=1, max_size=MAX_ROWS))
def test_the_usual_body_is_taken_in_one_pass(docs: list[dict[str, Any]]) -> None:
    body = orjson.dumps([dict(reversed(d.items())) for d in docs])  # key order does not matter
    rows = taken(body)
    assert rows is not None
    assert rows == checked_rows(body)
    assert all(type(v) is float for row in rows for v in row)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"age": 1, "income": 2, "\\u00e9 x": 3, "age": 4}]',  # a duplicate: the last wins
        b'  [{"income": 2.5, "\\u00e9 x": -0.0, "age": 18446744073709551615}] ',
        b'[{"age": 1e-400, "income": 1E2, "\\u00e9 x": 123456789012345678901234567890}]',
        b'[{"age": 1e308, "income": 1e308, "\\u00e9 x": 3}]',  # finite, though their sum is not
    ],
)
def test_edge_numbers_and_keys_read_as_orjson_reads_them(body: bytes) -> None:
    assert taken(body) == checked_rows(body)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",  # no rows: the checked path's 422
        b'{"records": [{"age": 1, "income": 2, "\\u00e9 x": 3}]}',  # another shape
        b'[{"age": 1, "income": 2}]',  # a missing column
        b'[{"age": 1, "income": 2, "\\u00e9 x": 3, "zip": 4}]',  # an extra one
        b'[{"age": true, "income": 2, "\\u00e9 x": 3}]',  # a bool is not a number here
        b'[{"age": null, "income": 2, "\\u00e9 x": 3}]',
        b'[{"age": "1", "income": 2, "\\u00e9 x": 3}]',
        b'[{"age": 1.7976931348623159e308, "income": 2, "\\u00e9 x": 3}]',  # beyond float64
        b'[{"age": 1, "income": -1e999, "\\u00e9 x": 3}]',
        b'[{"age": NaN, "income": 2, "\\u00e9 x": 3}]',
        b'[{"age": 1, "income": 2, "\\u00e9 x": 3},]',
        b'\xef\xbb\xbf[{"age": 1, "income": 2, "\\u00e9 x": 3}]',
    ],
)
def test_anything_else_goes_the_checked_way(body: bytes) -> None:
    assert DECODE(body, MAX_ROWS) is None


def test_more_rows_than_the_cap_go_the_checked_way_for_their_413() -> None:
    body = orjson.dumps([dict.fromkeys(NAMES, 1.0)] * (MAX_ROWS + 1))
    assert DECODE(body, MAX_ROWS + 1) is not None
    assert DECODE(body, MAX_ROWS) is None


class ColumnSum:
    """Predicts the sum of a row's values."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame.sum(axis=1), dtype=np.float64)


def answer(body: bytes) -> tuple[int, dict[str, Any]]:
    model = LoadedModel(ColumnSum(), SIGNATURE, {"flavor": "python_function"}, name="m", version=1)
    plane = DataPlane(ServingSettings(log_predictions=False, max_rows=MAX_ROWS))
    plane.add_model(ModelRuntime("m", 1, model))

    async def run() -> tuple[int, bytes, str]:
        await plane.startup()
        try:
            return await plane.predict_payload("m", body, {})
        finally:
            await plane.shutdown()

    status, payload, _ = asyncio.run(run())
    return status, orjson.loads(payload)


def test_the_data_plane_answers_the_usual_body_and_names_what_is_wrong_in_any_other() -> None:
    plane_runtime = ModelRuntime(
        "m", 1, LoadedModel(ColumnSum(), SIGNATURE, {"flavor": "python_function"})
    )
    assert plane_runtime.decode_records is not None  # an all-float model takes the one pass
    status, ok = answer(b'[{"age": 1, "income": 2.5, "\\u00e9 x": 3}]')
    assert (status, ok["predictions"]) == (200, [6.5])
    status, wrong = answer(b'[{"age": true, "income": 2.5, "\\u00e9 x": 3}]')
    assert status == 422
    assert "Input 'age' (row 0): expected a finite number" in wrong["error"]["message"]
    status, extra = answer(b'[{"age": 1, "income": 2.5, "\\u00e9 x": 3, "zip": 1}]')
    assert status == 422 and "unexpected 'zip'" in extra["error"]["message"]
    status, many = answer(orjson.dumps([dict.fromkeys(NAMES, 1.0)] * (MAX_ROWS + 1)))
    assert status == 413 and f"at most {MAX_ROWS:,}" in many["error"]["message"]
    status, columns = answer(orjson.dumps({"columns": {n: [1.0] for n in NAMES}}))
    assert (status, columns["predictions"]) == (200, [3.0])

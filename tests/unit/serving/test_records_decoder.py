"""The one-pass decoders of the usual /predict body (the compiled one, msgspec's, and the two
in line as the data plane uses them): each takes only what the checked path takes, gives the
same rows, and leaves everything else (with its named errors) to that path. The compiled one
also reads arbitrary and damaged bytes without failing (it parses untrusted input in C++)."""

from __future__ import annotations

import asyncio
import json
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.matrix import row_values
from modelpilot.models import LoadedModel
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving.app import DataPlane
from modelpilot.serving.records_decoder import (
    RecordsDecoder,
    compiled_decoder,
    msgspec_decoder,
    records_decoder,
)
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.serving.settings import ServingSettings
from modelpilot.serving.validation import RequestValidator

NAMES = ["age", "income", "é x"]  # any text is a column name, not only identifiers
SIGNATURE = Signature(
    "columns", inputs=tuple(ColumnSpec(n, "float64") for n in NAMES), output_dtype="float64"
)
IN_LINE, COMPILED, TYPED = records_decoder(NAMES), compiled_decoder(NAMES), msgspec_decoder(NAMES)
assert IN_LINE is not None and TYPED is not None  # names JSON writes as they are
DECODE: RecordsDecoder = IN_LINE
CHECKED = RequestValidator(SIGNATURE)
MAX_ROWS = 8


def _compiled(body: bytes, max_rows: int) -> Any:
    assert COMPILED is not None, "the compiled decoder is not built: `make install` builds it"
    return COMPILED(body, max_rows)


DECODERS: dict[str, RecordsDecoder] = {"in line": DECODE, "compiled": _compiled, "msgspec": TYPED}
each_decoder = pytest.mark.parametrize("decode", DECODERS.values(), ids=DECODERS.keys())


def test_the_compiled_decoder_is_built_and_stands_first() -> None:
    """`make install` (pip install -e .) compiles it with the machine's C++ compiler."""
    assert COMPILED is not None
    rows = DECODE(b'[{"age": 1, "income": 2.5, "\xc3\xa9 x": 3}]', MAX_ROWS)
    assert rows == [struct.pack("3d", 1.0, 2.5, 3.0)]  # packed doubles: the compiled one's


def test_a_model_whose_column_names_json_writes_escaped_takes_the_checked_path() -> None:
    """msgspec cannot rename a field to such a name (it used to fail the model's loading)."""
    names = ['say "hi"', "back\\slash", "tab\tbed"]
    assert compiled_decoder(names) is None and records_decoder(names) is None
    signature = Signature(
        "columns", inputs=tuple(ColumnSpec(n, "float64") for n in names), output_dtype="float64"
    )
    status, ok = answer(orjson.dumps([dict.fromkeys(names, 1.5)]), signature)
    assert (status, ok["predictions"]) == (200, [4.5])


def taken(body: bytes, decode: Callable[[bytes, int], Any] = DECODE) -> list[list[float]] | None:
    """What a one-pass decoder makes of a body, its rows as lists to compare."""
    rows = decode(body, MAX_ROWS)
    return None if rows is None else [list(row_values(row)) for row in rows]


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


@each_decoder
@given(records, st.booleans())
def test_what_it_takes_the_checked_path_takes_with_the_same_rows(
    decode: RecordsDecoder, docs: list[dict[str, Any]], spaced: bool
) -> None:
    body = json.dumps(docs, indent=1 if spaced else None).encode()
    fast = taken(body, decode)
    if fast is not None:
        assert fast == checked_rows(body)


finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)
numbers = st.one_of(finite, st.integers(min_value=-(2**63), max_value=2**64 - 1))


@each_decoder
@given(st.lists(st.fixed_dictionaries({n: numbers for n in NAMES}), min_size=1, max_size=MAX_ROWS))
def test_the_usual_body_is_taken_in_one_pass(
    decode: RecordsDecoder, docs: list[dict[str, Any]]
) -> None:
    body = orjson.dumps([dict(reversed(d.items())) for d in docs])  # key order does not matter
    rows = taken(body, decode)
    assert rows is not None
    assert rows == checked_rows(body)
    assert all(type(v) is float for row in rows for v in row)


@given(st.lists(st.fixed_dictionaries({n: numbers for n in NAMES}), min_size=1, max_size=3))
def test_the_compiled_rows_are_msgspecs_to_the_bit(docs: list[dict[str, Any]]) -> None:
    """Packed doubles equal to the bit (-0.0 and every rounding too) to msgspec's floats."""
    body = orjson.dumps(docs)
    typed = TYPED(body, MAX_ROWS)
    assert typed is not None
    assert _compiled(body, MAX_ROWS) == [struct.pack("3d", *row) for row in typed]


json_numbers = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,24}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,30}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True)),
)


@given(json_numbers)
def test_the_compiled_decoder_reads_every_json_number_correctly_rounded(text: str) -> None:
    """Any JSON number (up to 25 + 30 digits, exponents to 999) reads as Python's float()
    reads it, to the bit; only one beyond float64, or one that underflows to zero, is left to
    the checked path."""
    single = compiled_decoder(["x"])
    assert single is not None
    rows = single(b'[{"x": %s}]' % text.encode(), 1)
    expected = float(text)
    if rows is None:
        underflow = expected == 0 and any(
            c in "123456789" for c in text.split("e")[0].split("E")[0]
        )
        assert not math.isfinite(expected) or underflow, text
    else:
        assert rows == [struct.pack("d", expected)], text


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_break_the_compiled_decoder(body: bytes) -> None:
    fast = taken(body, _compiled)
    if fast is not None:
        assert fast == checked_rows(body)


USUAL = (
    b'[{"age": 1.5, "income": -20e3, "\xc3\xa9 x": 0}, {"age": 2, "income": 3, "\xc3\xa9 x": 4}]'
)


@given(st.data())
def test_a_damaged_usual_body_is_refused_or_read_as_the_checked_path_reads_it(
    data: st.DataObject,
) -> None:
    """Bytes cut, dropped, repeated or replaced anywhere in a body the decoder takes."""
    body = bytearray(USUAL)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body)))
        how = data.draw(st.sampled_from(["cut", "drop", "insert", "replace"]))
        if how == "cut":
            del body[at:]
        elif how == "drop":
            del body[at : at + 1]
        else:
            byte = data.draw(st.sampled_from(list(b'{}[]",:.-+eE0 9\\x00\xff')))
            body[at : at + (how == "replace")] = bytes([byte])
    fast = taken(bytes(body), _compiled)
    if fast is not None:
        assert fast == checked_rows(bytes(body))


@pytest.mark.parametrize(
    "body",
    [
        b'[{"age": 1, "income": 2, "\\u00e9 x": 3, "age": 4}]',  # a duplicate: the last wins
        b'  [{"income": 2.5, "\\u00e9 x": -0.0, "age": 18446744073709551615}] ',
        b'[{"age": 1e-400, "income": 1E2, "\\u00e9 x": 123456789012345678901234567890}]',
        b'[{"age": 1e308, "income": 1e308, "\\u00e9 x": 3}]',  # finite, though their sum is not
        b'[{"age": 0.1e-5, "income": -0, "\xc3\xa9 x": 2.4703282292062328e-324}]',
    ],
)
def test_edge_numbers_and_keys_read_as_orjson_reads_them(body: bytes) -> None:
    assert taken(body) == checked_rows(body)


@each_decoder
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
        b'[{"age": 01, "income": 2, "\xc3\xa9 x": 3}]',  # no leading zeros in JSON
        b'[{"age": 1., "income": 2, "\xc3\xa9 x": 3}]',
        b'[{"age": +1, "income": 2, "\xc3\xa9 x": 3}]',
        b'[{"age": 1, "income": 2, "\xc3\xa9 x": 3}] x',  # trailing bytes
        b'[{"age": 1, "income": 2, "\xc3\xa9 x": 3}',  # cut short
        b'[{"age": 0x10, "income": 2, "\xc3\xa9 x": 3}]',
        b'[{"age": 1, "income": 2, "\xc3\xa9 x": 3} {"age": 1, "income": 2, "\xc3\xa9 x": 3}]',
    ],
)
def test_anything_else_goes_the_checked_way(decode: RecordsDecoder, body: bytes) -> None:
    assert decode(body, MAX_ROWS) is None


@each_decoder
def test_more_rows_than_the_cap_go_the_checked_way_for_their_413(decode: RecordsDecoder) -> None:
    body = orjson.dumps([dict.fromkeys(NAMES, 1.0)] * (MAX_ROWS + 1))
    assert decode(body, MAX_ROWS + 1) is not None
    assert decode(body, MAX_ROWS) is None


class ColumnSum:
    """Predicts the sum of a row's values."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame.sum(axis=1), dtype=np.float64)


def answer(body: bytes, signature: Signature = SIGNATURE) -> tuple[int, dict[str, Any]]:
    model = LoadedModel(ColumnSum(), signature, {"flavor": "python_function"}, name="m", version=1)
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

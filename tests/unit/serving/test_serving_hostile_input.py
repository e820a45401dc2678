"""Parsing hostile OIP bodies and request ids: every failure is a typed error naming the field."""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson
import pytest

from modelpilot.errors import InvalidInput, MalformedRequest, PayloadTooLarge, shown
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving import protocol_v2
from modelpilot.serving.validation import RequestValidator, flatten


def _body(tensor: Mapping[str, object], binary: bytes = b"") -> tuple[bytes, str | None]:
    header = orjson.dumps({"inputs": [tensor]})
    return header + binary, str(len(header)) if binary else None


def test_shown_stops_at_a_few_levels_of_a_deeply_nested_value() -> None:
    deep: list[object] = [1]
    for _ in range(5000):
        deep = [deep]
    assert shown(deep) == "[[[[...]]]]"
    assert shown(list(range(1_000_000))) == "[0, 1, 2, 3, 4, 5, 6, 7, ...]"


def test_flatten_is_iterative_and_refuses_data_deeper_than_the_rank() -> None:
    deep: list[object] = [1.0]
    for _ in range(5000):
        deep = [deep]
    assert flatten(deep, 2) is None
    assert flatten([[1, 2], [3, 4]], 2) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("binary", "message"),
    [
        (b"\x01\x00", r"BYTES element 0 needs a 4-byte length prefix; only 2 bytes are left"),
        (b"\x01\x00\x00\x00a\x02", r"BYTES element 1 needs a 4-byte length prefix; only 1 "),
        (b"\x09\x00\x00\x00abc", r"BYTES element 0 declares 9 bytes; only 3 are left"),
    ],
)
def test_truncated_bytes_elements_name_the_input(binary: bytes, message: str) -> None:
    parameters = {"binary_data_size": len(binary)}
    tensor = {"name": "s", "shape": [1], "datatype": "BYTES", "parameters": parameters}
    with pytest.raises(InvalidInput, match=f"Input 's': {message}"):
        protocol_v2.parse_infer(*_body(tensor, binary))


@pytest.mark.parametrize("size", ["8", 1.5, -1, True, [8]])
def test_binary_data_size_must_be_a_whole_number_of_bytes(size: object) -> None:
    tensor = {
        "name": "x",
        "shape": [1],
        "datatype": "FP64",
        "parameters": {"binary_data_size": size},
    }
    with pytest.raises(InvalidInput, match=r"Input 'x': binary_data_size must be a whole number"):
        protocol_v2.parse_infer(*_body(tensor, b"\0" * 8))


def test_a_header_length_beyond_the_body_is_a_400_naming_the_header() -> None:
    with pytest.raises(MalformedRequest, match="Inference-Header-Content-Length '99' is not a"):
        protocol_v2.parse_infer(b"{}", "99")


def test_rows_past_the_cap_are_refused_from_the_shape_alone() -> None:
    tensor = {"name": "x", "shape": [11, 3], "datatype": "FP64", "data": None}
    with pytest.raises(PayloadTooLarge, match=r"Input 'x' has 11 rows; at most 10 are accepted"):
        protocol_v2.parse_infer(orjson.dumps({"inputs": [tensor]}), None, max_rows=10)


@pytest.mark.parametrize("value", ["", "x" * 129, "tab\there", "caf\xe9", 7, None])
def test_request_ids_must_be_short_printable_ascii(value: object) -> None:
    with pytest.raises(MalformedRequest, match="X-Request-Id must be 1-128 printable ASCII"):
        protocol_v2.checked_id(value, "X-Request-Id")


def test_thousands_of_tensors_with_one_name_are_refused_in_linear_time() -> None:
    validator = RequestValidator(Signature("columns", inputs=(ColumnSpec("x", "float64"),)))
    tensor = {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}
    request = protocol_v2.parse_infer(orjson.dumps({"inputs": [tensor] * 20_000}), None)
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="distinct names; 'x' came more than once"):
        protocol_v2.rows_from_tensors(request, validator)
    assert time.perf_counter() - started < 1.0  # quadratic counting took about a minute

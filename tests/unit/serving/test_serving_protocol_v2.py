"""Open Inference Protocol v2 parsing: JSON and binary tensors, as tritonclient encodes them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelpilot.errors import InvalidInput, MalformedRequest
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving import protocol_v2
from modelpilot.serving.validation import RequestValidator

SIG = Signature(
    "columns",
    inputs=(
        ColumnSpec("age", "int64"),
        ColumnSpec("score", "float32"),
        ColumnSpec("income", "float64"),
        ColumnSpec("plan", "string"),
    ),
)
V = RequestValidator(SIG)


def _body(inputs: list[triton.InferInput]) -> tuple[bytes, str | None]:
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, request_id="r1")
    return body, None if json_size is None else str(json_size)


def _column(name: str, values: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(values.shape), datatype)
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [False, True])
def test_column_tensors_of_every_datatype_become_rows(binary: bool) -> None:
    inputs = [
        _column("age", np.array([31, 40], dtype=np.int64), "INT64", binary),
        _column("score", np.array([0.5, 1.25], dtype=np.float32), "FP32", binary),
        _column("income", np.array([1.5, 2.5]), "FP64", binary),
        _column("plan", np.array([b"basic", "prö".encode()], dtype=np.object_), "BYTES", binary),
    ]
    parsed = protocol_v2.parse_infer(*_body(inputs))
    assert parsed.id == "r1"
    assert protocol_v2.rows_from_tensors(parsed, V) == [
        [31, 0.5, 1.5, "basic"],
        [40, 1.25, 2.5, "prö"],
    ]


@settings(max_examples=30, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.just(3)),
        elements=st.floats(-1e9, 1e9, allow_nan=False),
    ),
    st.booleans(),
)
def test_a_matrix_tensor_round_trips_exactly(matrix: np.ndarray, binary: bool) -> None:
    sig = Signature("columns", inputs=tuple(ColumnSpec(f"f{i}", "float64") for i in range(3)))
    parsed = protocol_v2.parse_infer(*_body([_column("x", matrix, "FP64", binary)]))
    rows = protocol_v2.rows_from_tensors(parsed, RequestValidator(sig))
    np.testing.assert_array_equal(np.array(rows), matrix)


def test_malformed_json_is_a_400_and_a_missing_inputs_list_a_422() -> None:
    with pytest.raises(MalformedRequest, match="not valid JSON"):
        protocol_v2.parse_infer(b"{", None)
    with pytest.raises(InvalidInput, match='non-empty "inputs" list'):
        protocol_v2.parse_infer(b'{"inputs": []}', None)
    with pytest.raises(MalformedRequest, match="Inference-Header-Content-Length 'x' is not"):
        protocol_v2.parse_infer(b"{}", "x")


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0]}, r"shape \[2\] needs 2"),
        ({"name": "x", "shape": [1], "datatype": "FP128", "data": [1.0]}, "unknown datatype"),
        ({"name": "x", "shape": [-1], "datatype": "FP64", "data": [1.0]}, "non-negative"),
        ({"name": "x", "shape": [1], "datatype": "FP64", "data": 1.0}, '"data" must be a list'),
        ({"shape": [1], "datatype": "FP64", "data": [1.0]}, r'inputs\[0\] needs a "name"'),
    ],
)
def test_bad_tensors_name_the_input(tensor: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        protocol_v2.parse_infer(orjson.dumps({"inputs": [tensor]}), None)


def test_wrong_datatypes_names_and_row_counts_are_explained() -> None:
    def rows(*tensors: Mapping[str, object]) -> object:
        return protocol_v2.rows_from_tensors(
            protocol_v2.parse_infer(orjson.dumps({"inputs": list(tensors)}), None), V
        )

    age: dict[str, object] = {"name": "age", "shape": [1], "datatype": "INT64", "data": [3]}
    score: dict[str, object] = {"name": "score", "shape": [1], "datatype": "FP32", "data": [0.5]}
    income: dict[str, object] = {"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]}
    plan: dict[str, object] = {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["a"]}
    with pytest.raises(InvalidInput, match=r"Input 'age' \(element 0\): datatype INT64 expects"):
        rows({**age, "data": ["3"]}, score, income, plan)
    with pytest.raises(InvalidInput, match=r"missing 'plan'; unexpected 'colour'"):
        rows(age, score, income, {**plan, "name": "colour"})
    with pytest.raises(InvalidInput, match=r"disagree on the number of rows: \[1, 2\]"):
        rows(age, score, income, {**plan, "shape": [2], "data": ["a", "b"]})
    with pytest.raises(InvalidInput, match=r"Input 'income' \(element 0\): datatype FP64 expects"):
        rows(age, score, {**income, "data": ["1.0"]}, plan)
    # null is a missing number, which the signature refuses where the column takes none
    with pytest.raises(InvalidInput, match=r"Input 'income' \(row 0\): expected a finite number"):
        rows(age, score, {**income, "data": [None]}, plan)
    with pytest.raises(InvalidInput, match=r"Input 'age' \(element 0\): datatype INT64 expects"):
        rows({**age, "data": [None]}, score, income, plan)


def test_binary_size_beyond_the_body_is_refused() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    )
    with pytest.raises(InvalidInput, match="binary_data_size is 16 but only 8 bytes"):
        protocol_v2.parse_infer(header + b"\0" * 8, str(len(header)))


def test_outputs_are_typed_tensors() -> None:
    out = protocol_v2.output_tensors(np.array([0, 1]), np.array([[0.75, 0.25], [0.5, 0.5]]))
    assert out[0] == {"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 1]}
    assert out[1]["shape"] == [2, 2] and out[1]["datatype"] == "FP64"
    labels = protocol_v2.output_tensors(np.array(["no", "yes"]), None)
    assert labels == [{"name": "predict", "shape": [2], "datatype": "BYTES", "data": ["no", "yes"]}]

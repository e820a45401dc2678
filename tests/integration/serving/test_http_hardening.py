"""The data plane's HTTP surface under hostile input: every bad request gets a 4xx JSON error
naming its field, unexpected failures a JSON 500 with the request id, oversized batches a 413
before validation, and slow clients are cut off while others are served."""

from __future__ import annotations

import json
import re

import httpx
import orjson
import pytest

from conftest import Server

RECORD = {"age": 40, "income": 52.5, "calls": 3}
COLUMNS = ("age", "income", "calls")


def _nested(depth: int, leaf: object) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _deep_json(depth: int, leaf: str = "1") -> str:
    """A JSON array nested ``depth`` deep, as text (Python's own encoder recurses too far)."""
    return "[" * depth + leaf + "]" * depth


def _oip(tensors: list[dict[str, object]], **extra: object) -> bytes:
    return orjson.dumps({"inputs": tensors, **extra})


def _columns(**override: object) -> list[dict[str, object]]:
    tensors: list[dict[str, object]] = [
        {"name": name, "shape": [1], "datatype": "FP64", "data": [1.0]} for name in COLUMNS
    ]
    tensors[0] = {**tensors[0], **override}
    return tensors


def _binary(tensor: dict[str, object], payload: bytes) -> tuple[bytes, dict[str, str]]:
    """A binary-extension OIP body: the JSON header, then the raw bytes of the first tensor."""
    header = _oip([tensor, *_columns()[1:]])
    return header + payload, {"Inference-Header-Content-Length": str(len(header))}


BINARY_BYTES = {"name": "age", "shape": [1], "datatype": "BYTES"}
CASES: dict[str, tuple[str, bytes, dict[str, str | bytes], int, str, str]] = {
    # case: (path, body, headers, status, field, message pattern)
    "predict inputs nested 1,000 deep": (
        "/predict/churn",
        ('{"inputs": ' + _deep_json(1000) + "}").encode(),
        {},
        422,
        "inputs",
        r"nested deeper than \[rows, columns\]",
    ),
    "predict record value nested 1,000 deep": (
        "/predict/churn",
        ('[{"age": ' + _deep_json(1000) + ', "income": 1.0, "calls": 1}]').encode(),
        {},
        422,
        "age",
        r"Input 'age' \(row 0\): expected a whole number \(int64\); got \[\[\[\[\.\.\.\]\]\]\]",
    ),
    "oip data nested 1,000 deep": (
        "/v2/models/churn/infer",
        (
            '{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": '
            + _deep_json(1000)
            + "}]}"
        ).encode(),
        {},
        422,
        "input-0",
        r"Input 'input-0': \"data\" is nested deeper than its shape \[1, 3\]",
    ),
    "oip parameters as a list": (
        "/v2/models/churn/infer",
        _oip(_columns(), parameters=[1, 2]),
        {},
        422,
        "parameters",
        r'"parameters" must be an object; got \[1, 2\]',
    ),
    "oip tensor parameters as a string": (
        "/v2/models/churn/infer",
        _oip(_columns(parameters="binary")),
        {},
        422,
        "age",
        r"Input 'age': \"parameters\" must be an object; got 'binary'",
    ),
    "binary_data_size not an integer": (
        "/v2/models/churn/infer",
        *_binary({**BINARY_BYTES, "parameters": {"binary_data_size": "eight"}}, b"\0" * 8),
        422,
        "age",
        r"Input 'age': binary_data_size must be a whole number of bytes >= 0; got 'eight'",
    ),
    "a BYTES chunk under 4 bytes": (
        "/v2/models/churn/infer",
        *_binary({**BINARY_BYTES, "parameters": {"binary_data_size": 2}}, b"\1\0"),
        422,
        "age",
        r"Input 'age': BYTES element 0 needs a 4-byte length prefix; only 2 bytes are left",
    ),
    "a BYTES length prefix past the chunk": (
        "/v2/models/churn/infer",
        *_binary({**BINARY_BYTES, "parameters": {"binary_data_size": 6}}, b"\xff\0\0\0ab"),
        422,
        "age",
        r"Input 'age': BYTES element 0 declares 255 bytes; only 2 are left",
    ),
    "a non-UTF-8 X-Request-Id": (
        "/predict/churn",
        orjson.dumps([RECORD]),
        {"X-Request-Id": b"caf\xe9"},  # Latin-1 bytes: not UTF-8
        400,
        "X-Request-Id",
        r"X-Request-Id must be 1-128 printable ASCII characters; got 'caf\xe9'",
    ),
    "a request id over 128 characters": (
        "/predict/churn",
        orjson.dumps([RECORD]),
        {"X-Request-Id": "r" * 129},
        400,
        "X-Request-Id",
        "X-Request-Id must be 1-128 printable ASCII characters",
    ),
    "an integer beyond int64 in an int64 column": (
        "/predict/churn",
        json.dumps([{**RECORD, "age": 2**64}]).encode(),
        {},
        422,
        "age",
        r"Input 'age' \(row 0\): expected a whole number within int64 \(int64\); got 1\.8446",
    ),
    "an integer beyond int64 in an OIP INT64 tensor": (
        "/v2/models/churn/infer",
        json.dumps(
            {
                "inputs": [
                    {"name": "age", "shape": [1], "datatype": "INT64", "data": [2**64]},
                    *_columns()[1:],
                ]
            }
        ).encode(),
        {},
        422,
        "age",
        r"Input 'age' \(element 0\): datatype INT64 expects integers; got 1\.8446744073709552e\+19",
    ),
    "an OIP id that is not a string": (
        "/v2/models/churn/infer",
        _oip(_columns(), id={"a": 1}),
        {},
        400,
        "id",
        r"id must be 1-128 printable ASCII characters; got \{'a': 1\}",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_requests_get_a_4xx_json_error_naming_the_field(server: Server, case: str) -> None:
    path, body, headers, status, field, message = CASES[case]
    reply = httpx.post(f"{server.url}{path}", content=body, headers=headers)
    assert reply.headers["content-type"] == "application/json", reply.text
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    if path.startswith("/v2/"):  # the OIP style: a string that names the field
        assert isinstance(error, str) and field in error
        text = error
    else:
        assert error["field"] == field and error["type"] in ("InvalidInput", "MalformedRequest")
        text = error["message"]
    assert re.search(message, text), text


def test_a_valid_request_id_is_echoed_and_an_oip_id_too(server: Server) -> None:
    rid = "batch-7/row:12 (retry 2)"
    reply = httpx.post(f"{server.url}/predict/churn", json=[RECORD], headers={"X-Request-Id": rid})
    assert reply.status_code == 200 and reply.json()["request_id"] == rid
    assert reply.headers["x-request-id"] == rid
    oip = httpx.post(f"{server.url}/v2/models/churn/infer", content=_oip(_columns(), id="r-1"))
    assert oip.status_code == 200 and oip.json()["id"] == "r-1"

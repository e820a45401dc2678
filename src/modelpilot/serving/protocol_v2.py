"""Open Inference Protocol v2 (KServe / Triton / MLServer) over REST: parsing and answers.

Spec: kserve.github.io/website "Open Inference Protocol (V2 Inference Protocol)", REST
section, plus Triton's binary tensor data extension (``Inference-Header-Content-Length``):
the JSON header comes first and each input flagged with ``binary_data_size`` has its raw
little-endian bytes appended in order (BYTES elements as 4-byte length + bytes).
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from modelpilot.errors import InvalidInput, MalformedRequest, PayloadTooLarge, shown
from modelpilot.serving.settings import ServingSettings
from modelpilot.serving.validation import NUMBER_TYPES, RequestValidator, Row, flatten

DATATYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
SIGNATURE_DATATYPES = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
}


# The NumPy kind of each datatype ("b", "i", "u", "f"), looked up per tensor.
KINDS = {name: np.dtype(dtype).kind for name, dtype in DATATYPES.items()}


class Tensor(NamedTuple):
    """One named input tensor (a tuple: a request may carry one per column)."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


@dataclass(frozen=True)
class InferRequest:
    """A parsed inference request."""

    id: str | None
    inputs: list[Tensor]
    parameters: dict[str, Any]


MAX_ID_CHARS = 128  # a client-chosen request id travels in logs and response headers


def checked_id(value: Any, field: str) -> str:
    """A client-chosen request id: 1-128 printable ASCII characters, or a 400 naming the field.

    >>> checked_id("req-1", "id")
    'req-1'
    >>> checked_id("caf\xe9", "X-Request-Id")
    Traceback (most recent call last):
    modelpilot.errors.MalformedRequest: X-Request-Id must be 1-128 printable ASCII characters; got 'caf\xe9'. Send a shorter id, or none and the server makes one.
    """  # noqa: E501
    if (
        type(value) is str
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isascii()
        and value.isprintable()
    ):
        return value
    raise MalformedRequest(
        f"{field} must be 1-{MAX_ID_CHARS} printable ASCII characters; got {shown(value)}. "
        "Send a shorter id, or none and the server makes one.",
        field=field,
    )


def parse_infer(
    body: bytes, header_length: str | None, max_rows: int = ServingSettings.max_rows
) -> InferRequest:
    """Parse a JSON (or binary-extension) inference request, or raise a 4xx error.

    A tensor of more than ``max_rows`` rows is refused (413) from its shape, before its data
    is decoded or validated.
    """
    json_part, binary = _split(body, header_length)
    try:
        doc = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(
            f"The request body is not valid JSON: {exc}.", field="body"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise InvalidInput(
            'An inference request must be an object with a non-empty "inputs" list of '
            'tensors ({"name", "shape", "datatype", "data"}).',
            field="inputs",
        )
    parameters = _parameters(doc, "The request", "parameters")
    tensors = []
    offset = 0
    for index, item in enumerate(doc["inputs"]):
        tensor, offset = _tensor(item, index, binary, offset, max_rows)
        tensors.append(tensor)
    request_id = doc.get("id")
    return InferRequest(
        None if request_id is None or request_id == "" else checked_id(request_id, "id"),
        tensors,
        parameters,
    )


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary tensor data) of a body, per Inference-Header-Content-Length."""
    if header_length is None:
        return body, b""
    length = int(header_length) if header_length.isdigit() else -1
    if not 0 <= length <= len(body):
        raise MalformedRequest(
            f"Inference-Header-Content-Length {shown(header_length)} is not a number of bytes "
            f"within the {len(body)}-byte body.",
            field="Inference-Header-Content-Length",
        )
    return body[:length], body[length:]


def _parameters(item: dict[str, Any], where: str, field: str) -> dict[str, Any]:
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InvalidInput(
            f'{where}: "parameters" must be an object; got {shown(parameters)}.', field=field
        )
    return parameters


def _tensor(item: Any, index: int, binary: bytes, offset: int, max_rows: int) -> tuple[Tensor, int]:
    where = f"inputs[{index}]"
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object; got {shown(item)}.", field=where)
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f'{where} needs a "name".', field=where)
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(
            f'Input {name!r}: "shape" must be a list of non-negative integers; got {shown(shape)}.',
            field=name,
        )
    if shape and shape[0] > max_rows:
        raise PayloadTooLarge(
            f"Input {name!r} has {shape[0]:,} rows; at most {max_rows:,} are accepted per "
            "request (--max-rows). Split the batch into smaller requests.",
            field=name,
        )
    if datatype not in KINDS and datatype != "BYTES":
        raise InvalidInput(
            f"Input {name!r}: unknown datatype {shown(datatype)}; expected one of "
            f"{', '.join([*DATATYPES, 'BYTES'])}.",
            field=name,
        )
    count = math.prod(shape)
    size = _parameters(item, f"Input {name!r}", name).get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise InvalidInput(
                f"Input {name!r}: binary_data_size must be a whole number of bytes >= 0; got "
                f"{shown(size)}.",
                field=name,
            )
        chunk = binary[offset : offset + size]
        if len(chunk) != size:
            raise InvalidInput(
                f"Input {name!r}: binary_data_size is {size} but only {len(chunk)} bytes "
                "followed the JSON header.",
                field=name,
            )
        data = _decode_binary(chunk, datatype, count, name)
        offset += size
    else:
        data = _flatten(item.get("data"), name, shape)
    if len(data) != count:
        raise InvalidInput(
            f"Input {name!r}: shape {shape} needs {count} values; got {len(data)}.", field=name
        )
    return Tensor(name, shape, datatype, data), offset


def _decode_binary(chunk: bytes, datatype: str, count: int, name: str) -> list[Any]:
    if datatype == "BYTES":
        return _decode_bytes(chunk, name)
    dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise InvalidInput(
            f"Input {name!r}: {len(chunk)} bytes do not hold {count} {datatype} values.", field=name
        )
    numbers: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
    return numbers


def _decode_bytes(chunk: bytes, name: str) -> list[Any]:
    """BYTES elements: each a 4-byte little-endian length, then that many bytes."""
    values: list[Any] = []
    pos = 0
    while pos < len(chunk):
        left = len(chunk) - pos - 4
        if left < 0:
            raise InvalidInput(
                f"Input {name!r}: BYTES element {len(values)} needs a 4-byte length prefix; "
                f"only {left + 4} bytes are left in its binary data.",
                field=name,
            )
        (length,) = struct.unpack_from("<I", chunk, pos)
        if length > left:
            raise InvalidInput(
                f"Input {name!r}: BYTES element {len(values)} declares {length} bytes; only "
                f"{left} are left in its binary data.",
                field=name,
            )
        values.append(chunk[pos + 4 : pos + 4 + length].decode("utf-8", "replace"))
        pos += 4 + length
    return values


def _flatten(data: Any, name: str, shape: list[int]) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(f'Input {name!r}: "data" must be a list; got {shown(data)}.', field=name)
    flat = flatten(data, max(len(shape), 1))
    if flat is None:
        raise InvalidInput(
            f'Input {name!r}: "data" is nested deeper than its shape {shape}; send it flat '
            "(row-major) or nested as the shape says.",
            field=name,
        )
    return flat


def rows_from_tensors(request: InferRequest, validator: RequestValidator) -> list[Row]:
    """Rows in signature order: one 2-D tensor of all columns, or one tensor per column."""
    inputs = request.inputs
    if len(inputs) == 1 and inputs[0].name not in validator.name_set:
        tensor = inputs[0]
        return validator.from_matrix(_typed(tensor), tensor.shape, tensor.name)
    by_name = {t.name: t for t in inputs}
    if len(by_name) != len(inputs):
        counts = Counter(t.name for t in inputs)  # linear: a body may carry 100k tensors
        twice = sorted(name for name, count in counts.items() if count > 1)
        raise InvalidInput(
            f"Input tensors must have distinct names; {', '.join(map(repr, twice))} came more "
            "than once.",
            field=twice[0],
        )
    if by_name.keys() != validator.name_set:
        unknown = [n for n in by_name if n not in validator.name_set]
        missing = [n for n in validator.names if n not in by_name]
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unexpected {', '.join(map(repr, unknown))}"] if unknown else []
        )
        raise InvalidInput(
            f"Wrong input tensors: {'; '.join(parts)}. Send one tensor per column named "
            f"{', '.join(validator.names)}, or one [rows, {len(validator.names)}] tensor.",
            field=(missing or unknown)[0],
        )
    rows_count = {t.shape[0] if t.shape else 1 for t in inputs}
    if len(rows_count) != 1:
        raise InvalidInput(
            f"Input tensors disagree on the number of rows: {sorted(rows_count)}.", field="shape"
        )
    columns = {}
    for tensor in inputs:
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise InvalidInput(
                f"Input {tensor.name!r} has shape {tensor.shape}; a column tensor must be [rows] "
                "or [rows, 1].",
                field=tensor.name,
            )
        columns[tensor.name] = _typed(tensor)
    return validator.from_columns(columns)


_EXPECTED = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers (or null)"}
NAN = float("nan")


def _typed(tensor: Tensor) -> list[Any]:
    """Check values against the declared datatype and return Python values."""
    dt = tensor.datatype
    if dt == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in tensor.data]
    kind = KINDS[dt]
    data = tensor.data
    if kind == "f" and NUMBER_TYPES.issuperset(map(type, data)):  # the common case, checked in C
        return [float(v) for v in data] if int in set(map(type, data)) else data
    for index, value in enumerate(data):
        ok = (
            (type(value) is bool)
            if kind == "b"
            else (type(value) is int or (kind == "f" and (type(value) is float or value is None)))
        )
        if not ok:
            raise InvalidInput(
                f"Input {tensor.name!r} (element {index}): datatype {dt} expects "
                f"{_EXPECTED[kind]}; got {shown(value)}.",
                field=tensor.name,
            )
    if kind == "f":  # JSON has no NaN: null is a missing number (the signature decides)
        return [NAN if v is None else float(v) for v in tensor.data]
    return tensor.data


def output_tensors(
    predictions: np.ndarray, probabilities: np.ndarray | None
) -> list[dict[str, Any]]:
    """``predict`` (and ``predict_proba``) as OIP output tensors."""
    outputs = [_as_tensor("predict", predictions)]
    if probabilities is not None:
        outputs.append(_as_tensor("predict_proba", probabilities))
    return outputs


def _as_tensor(name: str, values: np.ndarray) -> dict[str, Any]:
    kind = values.dtype.kind
    datatype = {"f": "FP64", "i": "INT64", "u": "UINT64", "b": "BOOL"}.get(kind, "BYTES")
    data = values.astype(str).ravel().tolist() if datatype == "BYTES" else values.ravel().tolist()
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": data}

"""Open Inference Protocol v2 (KServe / Triton / MLServer) over REST: parsing and answers.

Spec: kserve.github.io/website "Open Inference Protocol (V2 Inference Protocol)", REST
section, plus Triton's binary tensor data extension (``Inference-Header-Content-Length``):
the JSON header comes first and each input flagged with ``binary_data_size`` has its raw
little-endian bytes appended in order (BYTES elements as 4-byte length + bytes).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from modelpilot.errors import InvalidInput, MalformedRequest, shown
from modelpilot.serving.validation import NUMBER_TYPES, RequestValidator, Row

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


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """Parse a JSON (or binary-extension) inference request, or raise a 400/422 error."""
    json_part, binary = body, b""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            raise MalformedRequest(
                f"Inference-Header-Content-Length {shown(header_length)} is not a number.",
                field="Inference-Header-Content-Length",
            ) from None
        json_part, binary = body[:length], body[length:]
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
    tensors = []
    offset = 0
    for index, item in enumerate(doc["inputs"]):
        tensor, offset = _tensor(item, index, binary, offset)
        tensors.append(tensor)
    request_id = doc.get("id")
    return InferRequest(
        str(request_id) if request_id is not None else None, tensors, doc.get("parameters") or {}
    )


def _tensor(item: Any, index: int, binary: bytes, offset: int) -> tuple[Tensor, int]:
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
    if datatype not in KINDS and datatype != "BYTES":
        raise InvalidInput(
            f"Input {name!r}: unknown datatype {shown(datatype)}; expected one of "
            f"{', '.join([*DATATYPES, 'BYTES'])}.",
            field=name,
        )
    count = math.prod(shape)
    size = (item.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        chunk = binary[offset : offset + int(size)]
        if len(chunk) != int(size):
            raise InvalidInput(
                f"Input {name!r}: binary_data_size is {size} but only {len(chunk)} bytes "
                "followed the JSON header.",
                field=name,
            )
        data = _decode_binary(chunk, datatype, count, name)
        offset += int(size)
    else:
        data = _flatten(item.get("data"), name)
    if len(data) != count:
        raise InvalidInput(
            f"Input {name!r}: shape {shape} needs {count} values; got {len(data)}.", field=name
        )
    return Tensor(name, shape, datatype, data), offset


def _decode_binary(chunk: bytes, datatype: str, count: int, name: str) -> list[Any]:
    if datatype == "BYTES":
        values, pos = [], 0
        while pos < len(chunk):
            (length,) = struct.unpack_from("<I", chunk, pos)
            values.append(chunk[pos + 4 : pos + 4 + length].decode("utf-8", "replace"))
            pos += 4 + length
        return values
    dtype = np.dtype(DATATYPES[datatype]).newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise InvalidInput(
            f"Input {name!r}: {len(chunk)} bytes do not hold {count} {datatype} values.", field=name
        )
    numbers: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
    return numbers


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(f'Input {name!r}: "data" must be a list; got {shown(data)}.', field=name)
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for item in data:
            out.extend(_flatten(item, name) if isinstance(item, list) else [item])
        return out
    return data


def rows_from_tensors(request: InferRequest, validator: RequestValidator) -> list[Row]:
    """Rows in signature order: one 2-D tensor of all columns, or one tensor per column."""
    inputs = request.inputs
    if len(inputs) == 1 and inputs[0].name not in validator.name_set:
        tensor = inputs[0]
        return validator.from_matrix(_typed(tensor), tensor.shape, tensor.name)
    by_name = {t.name: t for t in inputs}
    if len(by_name) != len(inputs):
        twice = sorted({t.name for t in inputs if sum(u.name == t.name for u in inputs) > 1})
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
            else (type(value) is int or (kind == "f" and type(value) is float))
        )
        if not ok:
            raise InvalidInput(
                f"Input {tensor.name!r} (element {index}): datatype {dt} expects "
                f"{'booleans' if kind == 'b' else 'numbers'}; got {shown(value)}.",
                field=tensor.name,
            )
    if kind == "f":
        return [float(v) for v in tensor.data]
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

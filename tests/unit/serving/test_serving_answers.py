"""The data plane's usual one-row answer is joined from the batch's JSON: byte for byte the
answer that serialising the request's dict gives, for any batch a model can produce."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.serving.app import RequestContext, _dict_answer, _id_block, _joined_answer
from modelpilot.serving.runtime import BatchOutput

request_ids = st.text(
    st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40
)  # printable ASCII, as X-Request-Id is checked: quotes and backslashes included
probabilities = st.floats(0, 1) | st.sampled_from([1e-300, 5e-324, 0.1 + 0.2, 1.0 - 1e-16])


class Runtime:
    """The two things an answer reads from a ModelRuntime, and the JSON it caches of them."""

    def __init__(self, name: str, version: int, classes: list[Any] | None) -> None:
        self.name, self.version, self.classes = name, version, classes
        head = b',"model":%s,"version":%d,"predictions":[' % (orjson.dumps(name), version)
        self.answer_head = head
        self.answer_tail = b']],"classes":' + orjson.dumps(classes) + b"}"


@st.composite
def batches(draw: st.DrawFn) -> tuple[Runtime, BatchOutput]:
    rows = draw(st.integers(1, 40))
    name = draw(st.text(min_size=1, max_size=12))
    version = draw(st.integers(1, 10_000))
    kind = draw(st.sampled_from(["int", "str", "regression"]))
    if kind == "regression":  # float32 and ints too: written as the Python numbers they are
        values = draw(st.lists(st.floats(allow_nan=False), min_size=rows, max_size=rows))
        dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.uint8, object]))
        if dtype is object:
            array = np.asarray(values, dtype=object)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                array = np.asarray(values).astype(dtype)
        return Runtime(name, version, None), BatchOutput(array, None)
    width = draw(st.integers(1, 4))
    classes: list[Any] = (
        list(range(width))
        if kind == "int"
        else draw(st.lists(st.text(max_size=6), min_size=width, max_size=width, unique=True))
    )
    proba = np.asarray(
        draw(
            st.lists(
                st.lists(probabilities, min_size=width, max_size=width),
                min_size=rows,
                max_size=rows,
            )
        )
    )
    labels = np.asarray(classes)[np.argmax(proba, axis=1)]
    if draw(st.booleans()):  # as a model may hand them over: column-major, or float32
        proba = draw(st.sampled_from([np.asfortranarray, lambda p: p.astype(np.float32)]))(proba)
    return Runtime(name, version, classes), BatchOutput(labels, proba)


@given(batches(), request_ids, st.data())
def test_a_joined_answer_is_the_serialised_dict(
    batch: tuple[Runtime, BatchOutput], request_id: str, data: st.DataObject
) -> None:
    runtime, output = batch
    rows = output.row_json
    if output.predictions.dtype.kind in "US":  # a text label: every request builds its dict
        assert rows is None
        return
    assert rows is not None and len(rows[0]) == len(output.predictions)
    assert (rows[1] is None) == (output.probabilities is None)
    offset = data.draw(st.integers(0, len(output.predictions) - 1))
    context = RequestContext(request_id, None, None)
    opening = b'{"request_id":' + orjson.dumps(request_id)
    joined = _joined_answer(runtime, rows, offset, opening)  # type: ignore[arg-type]
    assert joined == _dict_answer(runtime, output, offset, 1, request_id, context)  # type: ignore[arg-type]
    answer = orjson.loads(joined)
    assert answer["request_id"] == request_id and answer["version"] == runtime.version
    expected = orjson.loads(orjson.dumps(output.prediction_list[offset : offset + 1]))
    assert answer["predictions"] == expected  # (infinity and NaN are JSON nulls)


@given(st.integers(0, 10**12))
def test_each_request_id_comes_with_its_answers_opening(block: int) -> None:
    ids = list(_id_block(block))
    assert len({request_id for request_id, _ in ids}) == len(ids)  # unique within a block
    for request_id, opening in ids[:3] + ids[-3:]:
        assert opening == b'{"request_id":' + orjson.dumps(request_id)
        assert request_id.endswith(f"-{block}-" + request_id.rsplit("-", 1)[1])

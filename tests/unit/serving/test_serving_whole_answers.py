"""The usual request is queued whole and answered from its batch's fan-out: the same answer
the checked path gives, its own error when its row fails the model, a 503 naming why when
the batcher refuses it, and every status counted in /metrics."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelpilot.models import LoadedModel
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving.app import DataPlane
from modelpilot.serving.runtime import ModelRuntime
from modelpilot.serving.settings import ServingSettings

NAMES = ["age", "income"]
SIGNATURE = Signature(
    "columns", inputs=tuple(ColumnSpec(n, "float64") for n in NAMES), output_dtype="float64"
)
UNLUCKY = 13.0


class PickySum:
    """Predicts a row's sum; refuses a batch holding an age of 13 (as a model may raise)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(frame))
        if (frame["age"] == UNLUCKY).any():
            raise ValueError("age 13 is unlucky")
        return np.asarray(frame.sum(axis=1), dtype=np.float64)


def body(*ages: float) -> bytes:
    return orjson.dumps([{"age": age, "income": 0.5} for age in ages])


def served(**settings: Any) -> tuple[DataPlane, PickySum]:
    model = PickySum()
    loaded = LoadedModel(model, SIGNATURE, {"flavor": "python_function"}, name="m", version=1)
    plane = DataPlane(ServingSettings(log_predictions=False, **settings))
    plane.add_model(ModelRuntime("m", 1, loaded))
    return plane, model


def ask(
    plane: DataPlane, bodies: list[bytes], headers: dict[bytes, bytes] | None = None
) -> tuple[list[tuple[int, dict[str, Any]]], list[bool]]:
    """Send the bodies at once (one batch): (status, answer) each, and whether each was
    queued whole (the batcher's future itself, not the checked path's coroutine)."""

    async def run() -> tuple[list[tuple[int, bytes, str]], list[bool]]:
        await plane.startup()
        try:
            waiting = [plane.predict_payload("m", b, dict(headers or {})) for b in bodies]
            whole = [not inspect.iscoroutine(w) for w in waiting]
            return list(await asyncio.gather(*waiting)), whole
        finally:
            await plane.shutdown()

    answers, whole = asyncio.run(run())
    for _, payload, request_id in answers:
        assert orjson.loads(payload)["request_id"] == request_id  # body and header agree
    return [(status, orjson.loads(payload)) for status, payload, _ in answers], whole


def test_usual_requests_are_answered_whole_from_one_batch_as_the_checked_path_answers() -> None:
    plane, model = served()
    answers, whole = ask(plane, [body(1.0), body(2.0), body(3.0, 4.0)])
    assert whole == [True, True, True]
    assert [a["predictions"] for _, a in answers] == [[1.5], [2.5], [3.5, 4.5]]
    assert {s for s, _ in answers} == {200} and model.calls == [4]  # one predict call
    assert len({a["request_id"] for _, a in answers}) == 3
    assert 'requests_total{code="200",model="m",version="1"} 3.0' in plane.metrics.render().decode()
    plane, _ = served()
    checked, whole = ask(plane, [body(1.0), body(3.0, 4.0)], {b"x-request-id": b"mine"})
    assert whole == [False, False]  # an id of its own: the checked path echoes it
    for (_, a), (_, b) in zip([answers[0], answers[2]], checked, strict=True):
        assert b["request_id"] == "mine"
        assert {**a, "request_id": "mine"} == b


def test_a_failing_row_fails_its_own_request_with_its_id_and_the_neighbours_are_answered() -> None:
    plane, model = served()
    answers, whole = ask(plane, [body(1.0), body(UNLUCKY), body(2.0)])
    assert all(whole) and [s for s, _ in answers] == [200, 500, 200]
    error = answers[1][1]
    assert error["error"]["type"] == "ModelFailed"
    assert error["request_id"] in error["error"]["message"]
    assert "ValueError: age 13 is unlucky" in error["error"]["message"]
    assert [a["predictions"] for s, a in answers if s == 200] == [[1.5], [2.5]]
    assert model.calls[0] == 3  # the batch first, then each request alone
    metrics = plane.metrics.render().decode()
    assert 'requests_total{code="500",model="m",version="1"} 1.0' in metrics
    assert 'requests_total{code="200",model="m",version="1"} 2.0' in metrics


def test_a_request_the_batcher_refuses_gets_a_503_that_says_why() -> None:
    plane, _ = served(queue_limit=2)
    answers, whole = ask(plane, [body(1.0, 2.0), body(3.0)])
    assert whole == [True, False] and answers[0][0] == 200
    status, refused = answers[1]
    assert status == 503 and refused["error"]["type"] == "Unavailable"
    assert "overloaded: 2 rows are already queued" in refused["error"]["message"]

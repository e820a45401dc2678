"""Metric batches over the server's fast paths: request bodies parsed by pydantic-core (with
``json.loads`` behind it), points written to PostgreSQL as orjson-made COPY text. Every
value must come back bit for bit, and every body must get the answer ``json.loads`` gave."""

from __future__ import annotations

import asyncio
import json
import random
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpilot.client import HttpTracking
from modelpilot.server.auth import Role
from modelpilot.server.deps import FastJsonRequest
from mp_server import Backends, make_token

STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
KEY = "val/loss: a-b_c.d e"  # every punctuation mark a metric name may hold


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    with ExitStack() as stack:
        yield Backends(stack, tmp_path_factory.mktemp("batch-bodies"))


def _tracking(backends: Backends, kind: str) -> HttpTracking:
    server = backends.server(kind)
    token = make_token(server.store_uri, f"editor-{random.random()}", Role.EDITOR)
    return HttpTracking(server.url, token=token, retry_for_s=5)


def _odd_floats(n: int) -> list[float]:
    """Extremes, signed zero, subnormals, and random bit patterns (finite ones)."""
    values = [5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.1]
    values += [1 / 3, 1e22, 1e-5, 123456789.0, 1e16, 0.30000000000000004]
    draw = random.Random(12)
    while len(values) < n:
        (x,) = struct.unpack("<d", draw.getrandbits(64).to_bytes(8, "little"))
        if x == x and abs(x) != float("inf"):
            values.append(x)
    return values


@pytest.mark.parametrize("kind", STORES)
def test_every_value_reads_back_bit_for_bit(backends: Backends, kind: str) -> None:
    tracking = _tracking(backends, kind)
    try:
        run = tracking.create_run("batch-bodies")
        values = _odd_floats(3000)
        steps = [i * 3_074_457_345_618_258 for i in range(len(values))]  # up to about 2**63
        tracking.log_metrics(
            run.id,
            [
                (KEY, v, s, 1_700_000_000_000 + i)
                for i, (v, s) in enumerate(zip(values, steps, strict=True))
            ],
        )
        points = sorted(tracking.get_metric_history(run.id, KEY), key=lambda p: p.step)
        assert [p.step for p in points] == steps
        if kind == "sqlite":  # SQLite stores a negative zero as 0 (its storage, not this path)
            values = [0.0 if v == 0 else v for v in values]
        assert [struct.pack("<d", p.value) for p in points] == [
            struct.pack("<d", v) for v in values
        ]
        assert tracking.get_run(run.id).metrics == {KEY: values[-1]}  # the highest step
    finally:
        tracking.close()


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        (b'{"rows": [["loss", NaN, 0, 1]]}', 422, "loss", "finite number"),
        (b'{"rows": [["loss", -Infinity, 0, 1]]}', 422, "loss", "finite number"),
        (b'{"rows": [["\\ud800", 1.0, 0, 1]]}', 422, "metric", "Invalid metric name"),
        (b'{"rows": [["loss", 1.0, 0, 1]', 400, "body", "not valid JSON"),
    ],
)
def test_bodies_pydantic_core_refuses_get_json_loads_answers(
    backends: Backends, body: bytes, status: int, field: str, says: str
) -> None:
    """NaN, Infinity and a lone surrogate are read by ``json.loads``; the checks behind it then
    name the field, as before the fast parser."""
    server = backends.server("sqlite")
    token = make_token(server.store_uri, f"raw-{random.random()}", Role.EDITOR)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    run = httpx.post(f"{server.url}/api/v1/runs", headers=headers, json={"experiment": "raw"})
    reply = httpx.post(
        f"{server.url}/api/v1/runs/{run.json()['id']}/metrics", headers=headers, content=body
    )
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["field"] == field and says in error["message"], error


def _read(body: bytes) -> Any:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    request = FastJsonRequest({"type": "http", "method": "POST", "headers": []}, receive)
    return asyncio.run(request.json())


def _outcome(parse: Any, body: bytes) -> tuple[str, str]:
    try:
        return "value", repr(parse(body))
    except Exception as exc:
        return "error", type(exc).__name__


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats()  # NaN and infinities too
    | st.text(),  # lone surrogates too
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.sampled_from([b"", b"\xef\xbb\xbf", b" "]), st.booleans())
def test_parsed_bodies_match_json_loads(value: Any, prefix: bytes, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    body = prefix + text.encode("utf-8", "surrogatepass")
    assert _outcome(_read, body) == _outcome(json.loads, body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_arbitrary_bytes_get_json_loads_answer(body: bytes) -> None:
    assert _outcome(_read, body) == _outcome(json.loads, body)

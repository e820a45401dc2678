"""`modelpilot serve` serves an ONNX candidate (``modelpilot optimize``) with the same API as
its scikit-learn source: /predict and OIP v2 give the same answers within float32 tolerance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from conftest import Server
from modelpilot.config import Settings
from modelpilot.optimization import optimize_version
from modelpilot.workspace import Workspace

COLUMNS = ["age", "income", "calls"]
TOLERANCE = 1e-5  # float32 inside the graph (docs/optimize.md)


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(45, 15, rows),
            "income": rng.normal(50, 10, rows),
            "calls": rng.normal(2, 1, rows),
        }
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, module_store_uri: str | None) -> Path:
    """score/1: HistGradientBoosting on floats; score/2: its ONNX candidate."""
    home = tmp_path_factory.mktemp("onnx-serving") / "home"
    x = _frame(600, 0)
    y = ((x["age"] > 45) ^ (x["calls"] > 2)).astype(int)
    ws = Workspace(Settings(home=home))
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    ws.log_model(model, "score", input_example=x.head())
    result = optimize_version(
        ws.registry, ws.artifacts, ws.datasets, ws.load_model, "score/1", "onnx", data=x
    )
    assert [c.ref for c in result.candidates] == ["score/2"]
    ws.close()
    return home


def test_onnx_candidate_answers_like_its_source_on_both_protocols(
    start_server: Callable[..., Server], home: Path
) -> None:
    server = start_server("score/2", extra=("--no-log",))
    rows = _frame(8, seed=3)
    ws = Workspace(Settings(home=home))
    try:
        source = ws.load_model("score/1")
        expected, labels = source.predict_proba(rows), source.predict(rows).tolist()
    finally:
        ws.close()
    reply = httpx.post(f"{server.url}/predict/score", json=rows.to_dict("records"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["version"] == 2 and body["classes"] == [0, 1]
    assert body["predictions"] == labels
    assert np.abs(np.asarray(body["probabilities"]) - expected).max() < TOLERANCE
    tensors = [
        {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
        for c in COLUMNS
    ]
    oip = httpx.post(f"{server.url}/v2/models/score/infer", json={"inputs": tensors})
    assert oip.status_code == 200, oip.text
    outputs = {o["name"]: o for o in oip.json()["outputs"]}
    probabilities = np.reshape(outputs["predict_proba"]["data"], (len(rows), 2))
    assert np.abs(probabilities - expected).max() < TOLERANCE
    assert outputs["predict"]["data"] == labels
    bad = httpx.post(f"{server.url}/predict/score", json=[{"age": 1.0, "income": 2.0}])
    assert bad.status_code == 422 and "missing 'calls'" in bad.json()["error"]["message"]

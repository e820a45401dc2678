"""`modelpilot serve` serves the candidates of ``modelpilot optimize`` (ONNX, compiled) with the
same API as their scikit-learn source: /predict and OIP v2 give the same answers, missing
values included, within each target's tolerance, and a bad request never reaches the model."""

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


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(45, 15, rows),
            "income": rng.normal(50, 10, rows),
            "calls": rng.normal(2, 1, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.2, "income"] = np.nan
    return frame


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, module_store_uri: str | None) -> Path:
    """score/1: HistGradientBoosting fitted with NaN; score/2 its ONNX candidate, score/3 its
    compiled one."""
    home = tmp_path_factory.mktemp("optimized-serving") / "home"
    x = _frame(600, 0)
    y = ((x["age"] > 45) ^ (x["income"].fillna(60) > 50)).astype(int)
    ws = Workspace(Settings(home=home))
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    ws.log_model(model, "score", input_example=x.head())
    result = optimize_version(
        ws.registry, ws.artifacts, ws.datasets, ws.load_model, "score/1", "onnx,compiled", data=x
    )
    assert [(c.ref, c.target, c.passed) for c in result.candidates] == [
        ("score/2", "onnx", True),
        ("score/3", "compiled", True),
    ]
    ws.close()
    return home


@pytest.mark.parametrize(
    ("version", "tolerance"),
    [
        (2, 1e-5),  # onnx: float32 inside the graph (docs/optimize.md)
        (3, 1e-12),  # compiled: the same float64 splits and leaves, summed in another order
    ],
)
def test_candidate_answers_like_its_source_on_both_protocols(
    start_server: Callable[..., Server], home: Path, version: int, tolerance: float
) -> None:
    server = start_server(f"score/{version}", extra=("--no-log",))
    rows = _frame(8, seed=3)
    rows.loc[[1, 4], "income"] = np.nan
    ws = Workspace(Settings(home=home))
    try:
        source = ws.load_model("score/1")
        expected, labels = source.predict_proba(rows), source.predict(rows).tolist()
        filled = source.predict_proba(rows.fillna(0))
    finally:
        ws.close()
    records = [
        {k: None if pd.isna(v) else v for k, v in r.items()} for r in rows.to_dict("records")
    ]
    reply = httpx.post(f"{server.url}/predict/score", json=records)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["version"] == version and body["classes"] == [0, 1]
    assert body["predictions"] == labels
    assert np.abs(np.asarray(body["probabilities"]) - expected).max() < tolerance
    tensors = [
        {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].fillna(0).tolist()}
        for c in COLUMNS
    ]
    oip = httpx.post(f"{server.url}/v2/models/score/infer", json={"inputs": tensors})
    assert oip.status_code == 200, oip.text
    outputs = {o["name"]: o for o in oip.json()["outputs"]}
    probabilities = np.reshape(outputs["predict_proba"]["data"], (len(rows), 2))
    assert np.abs(probabilities - filled).max() < tolerance
    bad = httpx.post(f"{server.url}/predict/score", json=[{"age": 1.0, "income": 2.0}])
    assert bad.status_code == 422 and "missing 'calls'" in bad.json()["error"]["message"]

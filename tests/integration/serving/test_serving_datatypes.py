"""tritonclient round trip for a model with FP32, FP64, INT64 and BYTES (string) inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from conftest import Server
from modelpilot.config import Settings
from modelpilot.workspace import Workspace


def _mixed(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 60, rows).astype(np.int64),
            "score": rng.normal(0.0, 1.0, rows).astype(np.float32),
            "spend": rng.normal(50.0, 10.0, rows),
            "plan": rng.choice(["basic", "pro", "max"], rows),
        }
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, module_store_uri: str | None) -> Path:
    """plans/1: one-hot plan + numeric columns -> logistic regression (on the module's backend)."""
    home = tmp_path_factory.mktemp("datatypes") / "home"
    x = _mixed(300)
    y = ((x["plan"] == "pro") | (x["score"] > 0.5)).astype(int)
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(x, y)
    ws = Workspace(Settings(home=home))
    ws.log_model(model, "plans", input_example=x.head())
    ws.close()
    return home


@pytest.fixture(scope="module")
def plans(start_server: Callable[..., Server]) -> Server:
    return start_server("plans/1", extra=("--no-log",))


@pytest.mark.parametrize("binary", [False, True])
def test_typed_column_tensors_round_trip_and_match_in_process_predictions(
    plans: Server, home: Path, binary: bool
) -> None:
    server = plans
    meta = httpx.get(f"{server.url}/v2/models/plans").json()
    datatypes = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert datatypes == {"tenure": "INT64", "score": "FP32", "spend": "FP64", "plan": "BYTES"}
    x = _mixed(6, seed=1)
    inputs = []
    for name, datatype in datatypes.items():
        values = x[name].to_numpy()
        values = values.astype(np.object_) if datatype == "BYTES" else values
        tensor = triton.InferInput(name, [len(x)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        result = client.infer("plans", inputs, model_version="1")
    finally:
        client.close()
    ws = Workspace(Settings(home=home))
    try:
        expected = ws.load_model("plans/1").predict_proba(x)
    finally:
        ws.close()
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("predict"), expected.argmax(axis=1))


def test_a_bytes_value_for_a_number_column_is_a_422_naming_it(plans: Server) -> None:
    server = plans
    body = {
        "inputs": [
            {"name": "tenure", "shape": [1], "datatype": "INT64", "data": [3]},
            {"name": "score", "shape": [1], "datatype": "BYTES", "data": ["high"]},
            {"name": "spend", "shape": [1], "datatype": "FP64", "data": [1.0]},
            {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
        ]
    }
    reply = httpx.post(f"{server.url}/v2/models/plans/infer", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"] == (
        "Input 'score' (row 0): expected a finite number (float32); got 'high'."
    )

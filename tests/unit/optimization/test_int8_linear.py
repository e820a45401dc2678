"""onnx-int8 for linear models: skl2onnx writes them as ai.onnx.ml Linear* operators whose
coefficients are attributes, which ONNX Runtime's quantiser cannot see; optimize rewrites
them as MatMul + Add (+ Sigmoid/Softmax, ArgMax, Gather) first. The rewrite must compute
exactly what the operator did, for every shape of linear model, before int8 touches it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import modelpilot as mp
from modelpilot.optimization.convert import _linear_as_matmul

RNG = np.random.default_rng(0)
X = RNG.normal(size=(400, 4)).astype(np.float32)
THIRDS = np.digitize(X[:, 0], [-0.5, 0.5])

MODELS: dict[str, tuple[Any, np.ndarray]] = {
    "binary, int labels": (LogisticRegression(), (X[:, 0] > 0).astype(int)),
    "binary, text labels": (LogisticRegression(), np.array(["no", "yes"])[(X[:, 1] > 0) * 1]),
    "three classes (softmax)": (LogisticRegression(), THIRDS),
    "three text classes": (LogisticRegression(), np.array(["a", "b", "c"])[THIRDS]),
    "no probabilities (LinearSVC)": (LinearSVC(), (X[:, 0] > 0).astype(int)),
    "regression": (LinearRegression(), X @ [1.0, 2.0, 3.0, 4.0] + 1),
    "two targets": (Ridge(), np.c_[X @ [1.0, 2.0, 3.0, 4.0], X @ [4.0, 3.0, 2.0, 1.0]]),
}


@pytest.fixture
def home(settings: mp.Settings) -> Iterator[Path]:
    mp.init(settings.home, store_uri=settings.store_uri)
    yield settings.home
    mp.workspace().close()


def _graph(model: Any) -> onnx.ModelProto:
    from skl2onnx import to_onnx

    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_onnx(model, X[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})


def _run(graph: onnx.ModelProto) -> list[np.ndarray]:
    return ort.InferenceSession(graph.SerializeToString()).run(None, {"X": X})  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", list(MODELS))
def test_the_rewrite_computes_what_the_linear_operator_did(case: str) -> None:
    model, y = MODELS[case]
    graph = _graph(model.fit(X, y))
    rewritten = _linear_as_matmul(graph)
    ops = {node.op_type for node in rewritten.graph.node}
    assert "MatMul" in ops and not ops & {"LinearClassifier", "LinearRegressor"}
    for before, after in zip(_run(graph), _run(rewritten), strict=True):
        if before.dtype.kind in "OUS":  # labels
            assert (before == after).all()
        else:
            np.testing.assert_allclose(after, before, atol=1e-6)


def test_a_logistic_regression_gets_an_int8_candidate_with_its_fidelity(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).astype(float)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, X[:, 0] > 0)
    data = mp.log_dataset(frame.assign(y=X[:, 0] > 0), "linear-train")
    source = mp.log_model(model, "linear", input_example=frame.head(), datasets=[data]).ref
    result = mp.optimize(source, to="onnx,onnx-int8", max_abs_proba_diff=1.0)
    int8 = {c.target: c for c in result.candidates}["onnx-int8"]
    assert int8.passed and "onnx-int8" not in result.table.skipped
    row = result.to_frame().set_index("ref").loc[int8.ref]
    assert row["agreement_data"] >= 0.99 and row["max_abs_proba_diff_data"] > 0  # int8 moves p
    loaded = mp.load_model(int8.ref)
    assert (loaded.predict(frame) == model.predict(frame)).mean() >= 0.99
    # ONNX Runtime's "consider pre-processing" advice stays off the user's terminal
    assert not [r for r in caplog.records if "quantization" in r.getMessage()]


def test_a_graph_importing_the_standard_domain_twice_is_still_quantised(home: Path) -> None:
    """A LinearSVC's graph imported the standard opset twice: ONNX Runtime ran it, but its
    quantiser stopped optimize with a traceback ("Failed to find proper ai.onnx domain")."""
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).astype(float)
    data = mp.log_dataset(frame.assign(y=X[:, 0] > 0), "svc-train")
    model = LinearSVC().fit(frame, X[:, 0] > 0)
    source = mp.log_model(model, "svc", input_example=frame.head(), datasets=[data]).ref
    result = mp.optimize(source, to="onnx,onnx-int8", max_abs_proba_diff=1.0)
    assert {c.target for c in result.candidates} == {"onnx", "onnx-int8"}
    int8 = mp.load_model({c.target: c for c in result.candidates}["onnx-int8"].ref)
    assert (int8.predict(frame) == model.predict(frame)).mean() >= 0.99

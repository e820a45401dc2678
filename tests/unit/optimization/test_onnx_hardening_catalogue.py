"""Every model of the hardening issue's catalogue (tests/mp_sklearn_catalogue.py) converts to
ONNX and agrees with its source, or is refused naming the step and the way out.

The catalogue's tabular pipelines read missing text as None (as Parquet and SQL give it):
``SimpleImputer(strategy="most_frequent")`` looks for NaN, passes None on, and the encoder
learns None as a category. The graph used to impute the missing text instead (up to 0.6 on a
probability, 7.5% of classes changed); the converted copy now mirrors what scikit-learn
computes (convert._convertible_copy).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.artifacts import MemoryArtifactStore
from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel, build_package, load_package
from modelpilot.optimization.convert import to_onnx
from mp_sklearn_catalogue import CATALOGUE, mixed_frame, numeric_frame

# Minutes of work: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow

MAX_DIFF = 1e-4  # float32: see test_onnx_catalogue.py
# Refused, with the words a user needs to act on it.
REFUSED = {
    "linear-svc": "CalibratedClassifierCV",
    "log1p-ridge": "FunctionTransformer calling log1p",
}


def _loaded(model: Any, example: pd.DataFrame) -> LoadedModel:
    artifacts = MemoryArtifactStore()
    return load_package(artifacts, build_package(model, artifacts, input_example=example).digest)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_catalogue_model_converts_and_agrees_or_is_refused_with_the_way_out(
    name: str,
) -> None:
    frame_kind, task, make = CATALOGUE[name]
    x, label, target = {"numeric": numeric_frame, "mixed": mixed_frame}[frame_kind]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence of small fits
        source = _loaded(make().fit(x, label if task == "classify" else target), x.head(5))
    if name in REFUSED:
        with pytest.raises(InvalidInput, match=REFUSED[name]):
            to_onnx(source)
        return
    candidate = _loaded(to_onnx(source), x.head(5))
    if frame_kind == "mixed":
        assert x["plan"].isna().any() and x["age"].isna().any()  # missing text and numbers
    if source.classes is not None:
        expected, got = source.predict_proba(x), candidate.predict_proba(x)
        difference = np.abs(expected - got)
        # the class the data plane answers and the fidelity check compares: the most probable
        # (an SVC's own predict follows its decision function, which can disagree with it)
        assert np.array_equal(expected.argmax(axis=1), got.argmax(axis=1)), name
    else:
        expected = source.predict(x)
        difference = np.abs(candidate.predict(x) - expected) / np.maximum(1.0, np.abs(expected))
    assert float(difference.max()) <= MAX_DIFF, (name, float(difference.max()))

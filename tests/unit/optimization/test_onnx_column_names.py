"""Columns whose names are no identifiers ("hours per week", "capital-gain", "work.class",
"1st") convert to ONNX: skl2onnx renames such graph inputs ("hours_per_week", "_1st"), and
the candidate used to feed them by the column names, failing at log time ("Required inputs
are missing from input feed")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelpilot.artifacts import MemoryArtifactStore
from modelpilot.models import LoadedModel, build_package, load_package
from modelpilot.optimization.convert import to_onnx

# Converts and loads several models (seconds): `make test-slow` (and .ci/run) runs it.
pytestmark = pytest.mark.slow

NUMBERS = ["hours per week", "capital-gain", "1st"]


def _loaded(model: object, example: pd.DataFrame) -> LoadedModel:
    artifacts = MemoryArtifactStore()
    return load_package(artifacts, build_package(model, artifacts, input_example=example).digest)


def test_columns_named_like_people_write_them_convert_and_agree() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "hours per week": rng.normal(40, 5, 400),
            "capital-gain": rng.exponential(100, 400),
            "1st": rng.integers(0, 5, 400),
            "work.class": rng.choice(["a b", "c/d", "é"], 400),
        }
    )
    pre = ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMBERS),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["work.class"]),
        ]
    )
    model = Pipeline([("pre", pre), ("model", LogisticRegression())])
    model.fit(frame, frame["hours per week"] > 40)
    source = _loaded(model, frame.head())
    candidate = _loaded(to_onnx(source), frame.head())
    assert [s.name for s in candidate.signature.inputs] == list(frame.columns)
    unseen = frame.assign(**{"work.class": "never seen"}).head(50)
    for rows in (frame, unseen):
        expected, got = source.predict_proba(rows), candidate.predict_proba(rows)
        assert float(np.max(np.abs(expected - got))) < 1e-5

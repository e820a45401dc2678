"""Distilled students of real scikit-learn models on data with missing values and categories:
what they follow, what they keep from the teacher, and the perturbed rows they learn from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from churn_data import churn_frame
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.artifacts import MemoryArtifactStore
from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel, build_package, load_package
from modelpilot.optimization import measure
from modelpilot.optimization.distill import distill, perturb

COLUMNS = ["age", "income", "plan"]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    return churn_frame(rows, seed, plans=("basic", "pro", "max"), missing_share=0.15, noise=0.3)


def _teacher(estimator: Any, label: str, train: pd.DataFrame) -> tuple[LoadedModel, int]:
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["plan"])],
        remainder="passthrough",
    )
    model = Pipeline([("pre", encode), ("model", estimator)]).fit(train[COLUMNS], train[label])
    artifacts = MemoryArtifactStore()
    package = build_package(model, artifacts, input_example=train[COLUMNS].head())
    return load_package(artifacts, package.digest), package.size_bytes


def _size(student: Any) -> int:
    artifacts = MemoryArtifactStore()
    return build_package(student, artifacts, input_example=_frame(5, 9)[COLUMNS]).size_bytes


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    holdout = _frame(500, 1)
    holdout.loc[:19, "plan"] = "enterprise"  # never seen in training
    return _frame(800, 0), holdout


@pytest.mark.parametrize("kind", ["hgb", "linear"])
def test_classifier_student_follows_its_teacher_and_is_smaller(
    data: tuple[pd.DataFrame, pd.DataFrame], kind: str
) -> None:
    train, holdout = data
    teacher, teacher_size = _teacher(HistGradientBoostingClassifier(max_iter=60), "churned", train)
    student = distill(teacher, teacher.prepare(train[COLUMNS]), kind=kind)
    assert student.kind == kind and kind in student.summary
    assert list(student.model.classes_) == teacher.classes
    assert student.model.steps[0][0] == "pre"  # the teacher's own fitted preprocessing
    rows = teacher.prepare(holdout[COLUMNS])  # NaN and an unseen category included
    fidelity = measure.compare(
        measure.outputs(teacher.predictor, rows, True),
        measure.outputs(student.model, rows, True),
        is_classifier=True,
    )
    assert fidelity.agreement is not None and fidelity.agreement >= 0.85
    assert fidelity.mean_abs_proba_diff < 0.15
    assert _size(student.model) < teacher_size


def test_regressor_student_learns_predictions_and_auto_keeps_a_close_cheap_one(
    data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, holdout = data
    teacher, _ = _teacher(HistGradientBoostingRegressor(max_iter=40), "spend", train)
    student = distill(teacher, teacher.prepare(train[COLUMNS]), kind="auto")
    assert set(student.validation) == {"linear", "hgb"}
    best = min(v.mean_abs_proba_diff for v in student.validation.values())
    linear_close = student.validation["linear"].mean_abs_proba_diff <= 1.1 * best
    assert student.kind == ("linear" if linear_close else "hgb")
    rows = teacher.prepare(holdout[COLUMNS])
    gap = np.abs(student.model.predict(rows) - teacher.predictor.predict(rows))
    assert np.median(gap) < 0.2 * np.std(holdout["spend"])


@pytest.mark.parametrize("kind", ["hgb", "linear"])
def test_a_teacher_taking_categories_itself_gets_a_student_that_encodes_them(
    data: tuple[pd.DataFrame, pd.DataFrame], kind: str
) -> None:
    """A HistGradientBoosting with native categories has no preprocessing to keep: its
    student gets the text column raw, and used to crash fitting on it ("could not convert
    string to float")."""
    train, holdout = data
    frame = train[COLUMNS].astype({"plan": "category"})
    model = HistGradientBoostingClassifier(max_iter=40, categorical_features="from_dtype")
    model.fit(frame, train["churned"])
    artifacts = MemoryArtifactStore()
    teacher = load_package(
        artifacts, build_package(model, artifacts, input_example=frame.head()).digest
    )
    student = distill(teacher, teacher.prepare(train[COLUMNS]), kind=kind)
    assert student.model.steps[0][0] == "encode" and kind in student.summary
    rows = teacher.prepare(holdout[COLUMNS])  # an unseen plan and missing values included
    fidelity = measure.compare(
        measure.outputs(teacher.predictor, rows, True),
        measure.outputs(student.model, rows, True),
        is_classifier=True,
    )
    assert fidelity.agreement is not None and fidelity.agreement >= 0.85


def test_a_student_scikit_learn_refuses_is_a_clear_error_not_a_traceback(
    data: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelpilot.optimization import distill as module

    train, _ = data
    teacher, _ = _teacher(HistGradientBoostingClassifier(max_iter=10), "churned", train)

    def refuse(*args: Any) -> Any:
        raise ValueError("could not convert string to float: 'basic'")

    monkeypatch.setattr(module, "_fit", refuse)
    with pytest.raises(InvalidInput, match="Cannot fit a linear student") as caught:
        distill(teacher, teacher.prepare(train[COLUMNS]), kind="linear")
    assert "could not convert string" in caught.value.message
    assert "--student" in caught.value.message


def test_unknown_student_kind_is_refused_naming_the_kinds(
    data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    teacher, _ = _teacher(HistGradientBoostingClassifier(max_iter=5), "churned", data[0])
    with pytest.raises(InvalidInput, match="Unknown student kind 'tree'. Choose one of: auto"):
        distill(teacher, teacher.prepare(data[0][COLUMNS]), kind="tree")


frames = data_frames(
    [
        column("x", elements=st.floats(-1e6, 1e6) | st.just(float("nan"))),
        column("n", elements=st.integers(-1000, 1000)),
        column("plan", elements=st.sampled_from(["a", "b", None])),
    ],
    index=range_indexes(min_size=1, max_size=30),
)


@settings(max_examples=50, deadline=None)
@given(frame=frames, rows=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_perturbed_rows_stay_in_each_columns_range_and_values(
    frame: pd.DataFrame, rows: int, seed: int
) -> None:
    out = perturb(frame, rows, seed=seed)
    assert list(out.columns) == list(frame.columns) and len(out) == rows
    assert out["n"].dtype == frame["n"].dtype
    assert out["n"].between(frame["n"].min(), frame["n"].max()).all()
    finite = frame["x"].dropna()
    if len(finite):
        assert out["x"].dropna().between(finite.min(), finite.max()).all()
    else:
        assert out["x"].isna().all()
    assert set(out["plan"].dropna()) <= set(frame["plan"].dropna())

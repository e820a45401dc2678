"""Multiclass CBPE against realised labels: same acceptance as the binary estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from modelpilot.errors import InvalidInput
from modelpilot.monitoring import estimate_performance

CLASSES = ("cat", "dog", "fox")
COLUMNS = {c: f"p_{c}" for c in CLASSES}


def calibrated(
    rng: np.random.Generator, n: int, concentration: float = 2.0, power: float = 1.0
) -> pd.DataFrame:
    """Labels drawn from Dirichlet probabilities; ``power`` > 1 reports them overconfident."""
    p = rng.dirichlet([concentration] * len(CLASSES), n)
    labels = (rng.random(n)[:, np.newaxis] > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)
    shown = p**power / (p**power).sum(axis=1, keepdims=True)
    frame = pd.DataFrame({COLUMNS[c]: shown[:, j] for j, c in enumerate(CLASSES)})
    names = np.array(CLASSES)
    return frame.assign(pred=names[shown.argmax(axis=1)], target=names[labels])


def sklearn_metric(name: str, f: pd.DataFrame) -> float:
    y, pred, score = f["target"], f["pred"], f[list(COLUMNS.values())].to_numpy()
    labels = list(CLASSES)
    if name == "roc_auc":
        return float(skm.roc_auc_score(y, score, multi_class="ovr", labels=labels))
    if name == "accuracy":
        return float(skm.accuracy_score(y, pred))
    scorer = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}
    return float(scorer[name](y, pred, labels=labels, average="macro", zero_division=0))


def test_estimates_track_realised_metrics_within_0_03_under_covariate_shift() -> None:
    rng = np.random.default_rng(41)
    analysis = pd.concat([calibrated(rng, 10_000), calibrated(rng, 10_000, 0.7)])
    metrics = ["accuracy", "f1", "roc_auc", "precision", "recall"]
    out = estimate_performance(calibrated(rng, 20_000), analysis, y_proba=COLUMNS, metric=metrics)
    for row in out.itertuples():  # realised is what scikit-learn computes on the chunk
        chunk = analysis.iloc[row.start : row.end]
        assert row.realised == pytest.approx(sklearn_metric(row.metric, chunk), abs=1e-9)
    assert (out["estimated"] - out["realised"]).abs().max() < 0.03
    accuracy = out[out["metric"] == "accuracy"]
    assert accuracy["realised"].iloc[-1] > accuracy["realised"].iloc[0] + 0.1  # a real shift
    assert accuracy["alert"].tolist() == [False, False, True, True]


def test_bounds_cover_the_realised_value_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(42)
    out = estimate_performance(
        calibrated(rng, 20_000),
        calibrated(rng, 30_000),
        y_proba=COLUMNS,
        metric=["accuracy", "f1", "roc_auc"],
        chunk_size=1000,
    )
    covered = (out["lower"] <= out["realised"]) & (out["realised"] <= out["upper"])
    assert covered.groupby(out["metric"]).mean().min() >= 0.85


def test_overconfident_probabilities_are_calibrated_on_the_reference() -> None:
    rng = np.random.default_rng(43)
    reference, analysis = calibrated(rng, 20_000, power=2), calibrated(rng, 10_000, power=2)
    out = estimate_performance(reference, analysis, y_proba=COLUMNS, y_pred=None, metric="accuracy")
    assert (out["estimated"] - out["realised"]).abs().max() < 0.03
    raw = estimate_performance(
        reference, analysis, y_proba=COLUMNS, y_pred=None, metric="accuracy", calibrate=False
    )
    assert (raw["estimated"] - raw["realised"]).abs().min() > 0.05  # what calibration fixes


def test_a_list_of_columns_is_in_the_order_of_the_sorted_classes() -> None:
    rng = np.random.default_rng(44)
    reference, analysis = calibrated(rng, 3000), calibrated(rng, 2000)
    analysis["target"] = analysis["target"].where(np.arange(2000) < 1000)  # half unlabelled
    by_name = estimate_performance(reference, analysis, y_proba=COLUMNS, metric="f1")
    by_order = estimate_performance(
        reference, analysis, y_proba=list(COLUMNS.values()), metric="f1"
    )
    pd.testing.assert_frame_equal(by_name, by_order)
    assert by_name["n_labels"].tolist() == [1000] and by_name["realised"].notna().all()


def test_integer_classes_match_labels_read_back_as_text_or_floats() -> None:
    rng = np.random.default_rng(45)
    frame = calibrated(rng, 3000)
    codes = {c: i for i, c in enumerate(CLASSES)}
    numeric = frame.assign(target=frame["target"].map(codes), pred=frame["pred"].map(codes))
    as_text = numeric.astype({"target": str, "pred": str})
    as_float = numeric.astype({"target": "Float64"})
    columns = {i: COLUMNS[c] for c, i in codes.items()}
    expected = estimate_performance(numeric, numeric, y_proba=columns, metric="accuracy")
    for other in (as_text, as_float):
        out = estimate_performance(other, other, y_proba=columns, metric="accuracy")
        pd.testing.assert_frame_equal(out, expected)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(20, 300),
    k=st.integers(2, 5),
    concentration=st.floats(0.2, 5.0),
)
def test_uncalibrated_accuracy_is_the_mean_top_probability_and_class_order_is_irrelevant(
    seed: int, n: int, k: int, concentration: float
) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([concentration] * k, n)
    frame = pd.DataFrame({f"p{j}": p[:, j] for j in range(k)}).assign(target=rng.integers(0, k, n))
    columns = {j: f"p{j}" for j in range(k)}
    chunk_size = n // 3  # three reference chunks: thresholds without the bootstrap
    options = {"y_pred": None, "calibrate": False, "n_simulations": 20, "chunk_size": chunk_size}
    metrics = ["accuracy", "f1", "roc_auc"]
    out = estimate_performance(frame, frame, y_proba=columns, metric=metrics, **options)
    accuracy = out[out["metric"] == "accuracy"]
    for row in accuracy.itertuples():
        assert row.estimated == pytest.approx(p[row.start : row.end].max(axis=1).mean())
    assert out["estimated"].between(0, 1).all() and (out["lower"] <= out["upper"]).all()
    reversed_columns = dict(reversed(list(columns.items())))
    again = estimate_performance(frame, frame, y_proba=reversed_columns, metric=metrics, **options)
    np.testing.assert_allclose(again["estimated"], out["estimated"], atol=1e-9)


def test_bad_inputs_say_what_was_wrong_and_what_is_accepted() -> None:
    rng = np.random.default_rng(46)
    good = calibrated(rng, 500)

    def fails(match: str, reference: pd.DataFrame, analysis: pd.DataFrame, **kw: object) -> None:
        with pytest.raises(InvalidInput, match=match):
            estimate_performance(reference, analysis, **{"y_proba": COLUMNS, **kw})  # type: ignore[arg-type]

    fails(r"holds only one class \('cat'\); expected at least 2", good.assign(target="cat"), good)
    fails(
        r"analysis column 'target' must hold one of the model's classes \['cat', 'dog', 'fox'\];"
        r" row 3 is 'cow'",
        good,
        good.assign(target=good["target"].where(good.index != 3, "cow")),
    )
    nan_proba = good.assign(p_dog=good["p_dog"].where(good.index != 7))
    fails(
        r"column 'p_dog' must hold probabilities in \[0, 1\] with no nulls; row 7", good, nan_proba
    )
    fails(r"must hold probabilities in \[0, 1\]; got \['x'", good, good.assign(p_cat="x"))
    doubled = good.assign(p_cat=good["p_cat"] / 2)
    fails(r"must sum to 1 in each row; row 0 sums to", good, doubled, calibrate=False)
    fails(
        r"lists 2 probability columns but .* holds 3 classes",
        good,
        good,
        y_proba=["p_cat", "p_dog"],
    )
    fails(
        r"Unknown performance metric \['mae'\]; supported for multiclass", good, good, metric="mae"
    )
    fails(r"task='binary' needs y_proba as a column name", good, good, task="binary")
    fails(r"missing from the analysis data.*Pass y_pred=None", good, good.drop(columns="pred"))

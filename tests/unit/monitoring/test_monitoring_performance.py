"""Label-free performance estimation (CBPE) against realised labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelpilot.errors import InvalidInput
from modelpilot.monitoring import estimate_performance


def calibrated(rng: np.random.Generator, n: int, a: float = 2.0, b: float = 2.0) -> pd.DataFrame:
    """A perfectly calibrated model: labels are drawn from its own probabilities."""
    proba = rng.beta(a, b, n)
    return pd.DataFrame(
        {
            "proba": proba,
            "pred": (proba >= 0.5).astype(int),
            "target": (rng.random(n) < proba).astype(int),
        }
    )


SKLEARN = {
    "roc_auc": lambda f: skm.roc_auc_score(f["target"], f["proba"]),
    "accuracy": lambda f: skm.accuracy_score(f["target"], f["pred"]),
    "f1": lambda f: skm.f1_score(f["target"], f["pred"]),
    "precision": lambda f: skm.precision_score(f["target"], f["pred"]),
    "recall": lambda f: skm.recall_score(f["target"], f["pred"]),
}


def assert_realised_matches_sklearn(out: pd.DataFrame, analysis: pd.DataFrame) -> None:
    """Each chunk's ``realised`` is the metric scikit-learn computes on that chunk's labels."""
    for row in out.itertuples():
        chunk = analysis.iloc[row.start : row.end]
        assert row.realised == pytest.approx(SKLEARN[row.metric](chunk), abs=1e-9), row


def test_estimated_accuracy_is_within_0_03_of_realised_even_under_covariate_shift() -> None:
    rng = np.random.default_rng(31)
    analysis = pd.concat([calibrated(rng, 15_000), calibrated(rng, 15_000, 5, 1)])
    out = estimate_performance(calibrated(rng, 20_000), analysis, metric="accuracy")
    assert len(out) == 6 and list(out["n_rows"]) == [5000] * 6
    assert_realised_matches_sklearn(out, analysis)
    assert (out["estimated"] - out["realised"]).abs().max() < 0.03
    assert out["realised"].iloc[-1] > out["realised"].iloc[0] + 0.1  # the shift is real


def test_every_metric_tracks_its_realised_value() -> None:
    rng = np.random.default_rng(32)
    metrics = ["roc_auc", "accuracy", "f1", "precision", "recall"]
    analysis = calibrated(rng, 10_000)
    out = estimate_performance(calibrated(rng, 20_000), analysis, metric=metrics, chunk_size=5000)
    assert list(out["metric"].unique()) == metrics
    assert_realised_matches_sklearn(out, analysis)
    assert (out["estimated"] - out["realised"]).abs().max() < 0.03
    assert ((out["lower"] <= out["estimated"]) & (out["estimated"] <= out["upper"])).all()


def test_bounds_cover_the_realised_value_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(33)
    out = estimate_performance(
        calibrated(rng, 20_000), calibrated(rng, 40_000), metric="accuracy", chunk_size=1000
    )
    covered = ((out["lower"] <= out["realised"]) & (out["realised"] <= out["upper"])).mean()
    assert covered >= 0.85


def test_alert_when_the_estimate_leaves_the_reference_range() -> None:
    rng = np.random.default_rng(34)
    analysis = pd.concat([calibrated(rng, 10_000), calibrated(rng, 10_000, 1.2, 1.2)])
    out = estimate_performance(calibrated(rng, 30_000), analysis, metric="accuracy")
    assert list(out["alert"]) == [False, False, True, True]


def test_realised_is_missing_where_labels_are_missing_and_the_model_is_recalibrated() -> None:
    rng = np.random.default_rng(35)
    reference = calibrated(rng, 20_000)
    reference["proba"] = reference["proba"] ** 2  # overconfident negatives: miscalibrated
    analysis = calibrated(rng, 10_000)
    truth = analysis["target"].copy()
    analysis["proba"] = analysis["proba"] ** 2
    analysis["target"] = analysis["target"].astype("Float64")
    analysis.loc[5000:, "target"] = pd.NA
    out = estimate_performance(reference, analysis, metric="accuracy", y_pred=None)
    assert out["realised"].isna().tolist() == [False, True]
    assert out["n_labels"].tolist() == [5000, 0]
    realised = float(((analysis["proba"] >= 0.5).astype(int) == truth).iloc[5000:].mean())
    assert abs(out["estimated"].iloc[1] - realised) < 0.03
    raw = estimate_performance(reference, analysis, metric="accuracy", y_pred=None, calibrate=False)
    assert abs(raw["estimated"].iloc[1] - realised) > 0.05  # what calibration fixes


def test_bad_inputs_say_what_was_expected() -> None:
    rng = np.random.default_rng(36)
    good = calibrated(rng, 500)
    bad = good.assign(proba=good["proba"] * 2)
    with pytest.raises(InvalidInput, match=r"probabilities in \[0, 1\] with no nulls; row \d+"):
        estimate_performance(good, bad)
    with pytest.raises(InvalidInput, match="Pass y_pred=None to use y_proba >= 0.5"):
        estimate_performance(good, good.drop(columns="pred"))
    with pytest.raises(InvalidInput, match="Unknown performance metric \\['auc'\\]"):
        estimate_performance(good, good, metric="auc")
    with pytest.raises(InvalidInput, match="holds only one class"):
        estimate_performance(good.assign(target=1), good)
    with pytest.raises(InvalidInput, match="must hold 0/1 labels"):
        estimate_performance(good.assign(target=2), good)
    with pytest.raises(InvalidInput, match="The analysis data has no rows"):
        estimate_performance(good, good.iloc[:0])

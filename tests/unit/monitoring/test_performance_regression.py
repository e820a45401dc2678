"""Regression DLE against realised labels: the classifier estimates' acceptance, with the
tolerance relative to the realised error (MAE and RMSE have the target's units). The binary
tests' 0.03 on an accuracy near 0.7 is about 4.5% of the value and 4.5 sampling standard
deviations of a 5000-row chunk. DLE also carries the loss model's own error, largest on
shifted chunks where the reference has few rows: over seeds 1-3 and 51 of the shift test the
largest gaps were 3.8% for MAE and 6.5% for RMSE (squared errors are heavy-tailed), hence 5%
and 7% here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from modelpilot.errors import InvalidInput
from modelpilot.monitoring import estimate_performance


def regression(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """A model that misses a curvature, on noise whose scale depends on the features."""
    x1, x2 = rng.normal(shift, 1, n), rng.uniform(-1, 1, n)
    colour = rng.choice(np.array(["red", "green", "blue"]), n)
    scale = 0.3 + 0.4 * np.abs(x1) + 0.5 * (colour == "green")
    truth = 2 * x1 + np.sin(3 * x2) + 0.3 * x1**2
    pred = 2 * x1 + np.sin(3 * x2) + 0.3
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": colour,
            "pred": pred,
            "target": truth + scale * rng.normal(size=n),
        }
    )


SKLEARN = {
    "mae": lambda f: skm.mean_absolute_error(f["target"], f["pred"]),
    "rmse": lambda f: skm.root_mean_squared_error(f["target"], f["pred"]),
}


def test_mae_within_5_and_rmse_within_7_percent_of_realised_under_covariate_shift() -> None:
    rng = np.random.default_rng(51)
    analysis = pd.concat([regression(rng, 10_000), regression(rng, 10_000, shift=1.0)])
    out = estimate_performance(
        regression(rng, 20_000), analysis, task="regression", metric=["mae", "rmse"]
    )
    for row in out.itertuples():
        chunk = analysis.iloc[row.start : row.end]
        assert row.realised == pytest.approx(SKLEARN[row.metric](chunk), rel=1e-9)
    relative = (out["estimated"] - out["realised"]).abs() / out["realised"]
    assert relative.groupby(out["metric"]).max().le(pd.Series({"mae": 0.05, "rmse": 0.07})).all()
    mae = out[out["metric"] == "mae"]
    assert mae["realised"].iloc[-1] > 1.2 * mae["realised"].iloc[0]  # the shift is real
    assert mae["alert"].tolist() == [False, False, True, True]


def test_bounds_cover_the_realised_value_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(52)
    analysis = pd.concat([regression(rng, 10_000), regression(rng, 10_000, shift=0.7)])
    out = estimate_performance(
        regression(rng, 10_000), analysis, y_proba=None, metric=["mae", "rmse"], chunk_size=1000
    )
    covered = (out["lower"] <= out["realised"]) & (out["realised"] <= out["upper"])
    assert covered.groupby(out["metric"]).mean().min() >= 0.85


def test_features_default_to_every_other_reference_column_and_labels_are_optional() -> None:
    rng = np.random.default_rng(53)
    reference, analysis = regression(rng, 400), regression(rng, 300)
    named = estimate_performance(
        reference,
        analysis.drop(columns="target"),
        task="regression",
        features=["x1", "x2", "colour"],
    )
    default = estimate_performance(reference, analysis.drop(columns="target"), task="regression")
    pd.testing.assert_frame_equal(named, default)
    assert named["realised"].isna().all() and named["n_labels"].tolist() == [0]
    assert named["metric"].tolist() == ["mae"]  # the default metric


@settings(max_examples=30, deadline=None)
@given(n=st.integers(30, 200), row=st.integers(0, 199), bad=st.sampled_from([np.nan, np.inf]))
def test_a_missing_or_infinite_prediction_is_named_by_row(n: int, row: int, bad: float) -> None:
    row = row % n
    frame = regression(np.random.default_rng(n), n)
    broken = frame.assign(pred=frame["pred"].where(frame.index != row, bad))
    with pytest.raises(
        InvalidInput,
        match=rf"analysis column 'pred' must hold finite numbers with no nulls; row {row} is",
    ):
        estimate_performance(frame, broken, task="regression")


def test_bad_inputs_say_what_was_wrong_and_what_is_accepted() -> None:
    good = regression(np.random.default_rng(54), 200)

    def fails(match: str, reference: pd.DataFrame, analysis: pd.DataFrame, **kw: object) -> None:
        with pytest.raises(InvalidInput, match=match):
            estimate_performance(reference, analysis, **{"task": "regression", **kw})  # type: ignore[arg-type]

    fails(
        r"reference column 'target' must hold numbers with no nulls; got \['high'",
        good.assign(target="high"),
        good,
    )
    fails(
        r"holds mixed values .* DLE accepts numeric, boolean, text and categorical",
        good.assign(x2=[[1]] * 200),
        good,
    )
    fails(r"missing from the analysis data.*Pass features=\[", good, good.drop(columns="x1"))
    fails(
        r"missing from the reference data.*Pass y_pred='<prediction column>'",
        good.drop(columns="pred"),
        good,
    )
    fails(r"DLE needs at least 30 labelled rows", good.head(10), good)
    fails(
        r"Unknown performance metric \['roc_auc'\]; supported for regression models: mae, rmse",
        good,
        good,
        metric="roc_auc",
    )
    fails(r"needs the prediction column; got y_pred=None", good, good, y_pred=None)
    with pytest.raises(InvalidInput, match=r"for a regression model pass task='regression'"):
        estimate_performance(good, good)  # the binary default: a 'proba' column

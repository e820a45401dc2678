"""Calibration: reliability bins against scikit-learn, ECE by hand, ECE bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve

from modelpilot.evaluation.calibration import evaluate_calibration, expected_calibration_error
from modelpilot.evaluation.prediction import Predictions


def binary(y: np.ndarray, p: np.ndarray) -> Predictions:
    return Predictions(
        "binary", y, (p >= 0.5).astype(np.int64), np.column_stack([1 - p, p]), (0, 1)
    )


def test_reliability_bins_match_scikit_learn_calibration_curve() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 3, 3000)
    y = (rng.uniform(size=3000) < p**1.3).astype(np.int64)  # miscalibrated on purpose
    # include values exactly on bin edges: both must put them in the same bin
    p[:20] = np.linspace(0, 1, 11).repeat(2)[:20]
    result = evaluate_calibration(binary(y, p), n_bins=10, n_bootstrap=0, confidence=0.95, seed=0)
    assert result is not None
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    filled = [b for b in result.bins if b.count > 0]
    assert [b.fraction_positive for b in filled] == pytest.approx(prob_true, abs=1e-12)
    assert [b.mean_predicted for b in filled] == pytest.approx(prob_pred, abs=1e-12)
    assert sum(b.count for b in result.bins) == 3000
    assert result.to_svg().count("<circle") == len(filled)


def test_ece_by_hand_on_a_small_case() -> None:
    # bin [0.1, 0.2): predictions 0.15, 0.15, labels 0, 1 -> |0.5 - 0.15| * 2/4
    # bin [0.8, 0.9): predictions 0.85, 0.85, labels 1, 1 -> |1.0 - 0.85| * 2/4
    y = np.array([0, 1, 1, 1])
    p = np.array([0.15, 0.15, 0.85, 0.85])
    assert expected_calibration_error(y, p) == pytest.approx(0.35 * 0.5 + 0.15 * 0.5)


def test_a_calibrated_model_has_small_ece_and_a_miscalibrated_one_large() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=20_000) < p).astype(np.int64)
    calibrated = evaluate_calibration(
        binary(y, p), n_bins=10, n_bootstrap=200, confidence=0.95, seed=0
    )
    overconfident = evaluate_calibration(
        binary(y, np.clip((p - 0.5) * 1.8 + 0.5, 0, 1)),
        n_bins=10,
        n_bootstrap=0,
        confidence=0.95,
        seed=0,
    )
    assert calibrated is not None and overconfident is not None
    assert calibrated.ece.value is not None and calibrated.ece.value < 0.015
    assert calibrated.ece.lower is not None and calibrated.ece.upper is not None
    assert calibrated.ece.lower <= calibrated.ece.value <= calibrated.ece.upper
    assert overconfident.ece.value is not None and overconfident.ece.value > 0.1
    assert overconfident.mce is not None and overconfident.mce >= overconfident.ece.value


def test_multiclass_uses_top_label_confidence() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    y = np.array([0, 1, 0, 1])
    p = Predictions("multiclass", y, proba.argmax(axis=1), proba, (0, 1, 2))
    result = evaluate_calibration(p, n_bins=10, n_bootstrap=0, confidence=0.95, seed=0)
    assert result is not None and result.kind == "top_label"
    # bins: 0.4 -> wrong; 0.6 wrong; 0.7 right; 0.8 right
    expected = (0.4 + 0.6 + 0.3 + 0.2) / 4
    assert result.ece.value == pytest.approx(expected)


def test_no_calibration_without_probabilities_or_for_regression() -> None:
    y = np.array([0, 1])
    assert (
        evaluate_calibration(
            Predictions("binary", y, y, None, (0, 1)),
            n_bins=10,
            n_bootstrap=0,
            confidence=0.9,
            seed=0,
        )
        is None
    )
    assert (
        evaluate_calibration(
            Predictions("regression", y * 1.0, y * 1.0, None, ()),
            n_bins=10,
            n_bootstrap=0,
            confidence=0.9,
            seed=0,
        )
        is None
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.floats(0, 1, allow_nan=False)), min_size=1, max_size=60
    ),
    st.integers(1, 30),
)
def test_ece_is_between_0_and_1(rows: list[tuple[int, float]], n_bins: int) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    ece = expected_calibration_error(y, p, n_bins=n_bins)
    assert 0.0 <= ece <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=40))
def test_ece_is_zero_when_predictions_are_the_labels(labels: list[int]) -> None:
    y = np.array(labels)
    assert expected_calibration_error(y, y.astype(float)) == 0.0

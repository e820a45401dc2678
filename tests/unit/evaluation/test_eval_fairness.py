"""Fairness: fairlearn's definitions on hand-computed cases, intervals, invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.evaluation.fairness import (
    check_attribute,
    demographic_parity_difference,
    equalized_odds_difference,
    evaluate_fairness,
)
from modelpilot.evaluation.metrics import metrics_for
from modelpilot.evaluation.prediction import Predictions

# Hand-computed case, 10 rows, groups a (4 rows) and b (6 rows):
#   a: y = 1 1 0 0,     ŷ = 1 0 1 0      -> SR 2/4, TPR 1/2, FPR 1/2
#   b: y = 1 1 1 0 0 0, ŷ = 1 1 1 1 0 0  -> SR 4/6, TPR 3/3, FPR 1/3
GROUPS = np.array(list("aaaabbbbbb"))
Y = np.array([1, 1, 0, 0, 1, 1, 1, 0, 0, 0])
PRED = np.array([1, 0, 1, 0, 1, 1, 1, 1, 0, 0])


def test_demographic_parity_difference_by_hand() -> None:
    assert demographic_parity_difference(PRED, GROUPS) == pytest.approx(4 / 6 - 2 / 4)


def test_equalized_odds_difference_is_the_larger_of_the_tpr_and_fpr_gaps() -> None:
    # TPR gap 1 - 1/2 = 0.5, FPR gap 1/2 - 1/3 = 1/6
    assert equalized_odds_difference(Y, PRED, GROUPS) == pytest.approx(0.5)


def test_three_groups_use_max_minus_min() -> None:
    groups = np.array(list("aabbcc"))
    pred = np.array([1, 1, 1, 0, 0, 0])
    assert demographic_parity_difference(pred, groups) == pytest.approx(1.0)


def test_a_group_without_positives_is_left_out_of_the_tpr_gap() -> None:
    groups = np.array(list("aabb"))
    y = np.array([1, 0, 0, 0])  # group b has no positives: no TPR
    pred = np.array([1, 0, 1, 0])
    # TPR: only a is defined -> no gap; FPR: a 0/1, b 1/2 -> 0.5
    assert equalized_odds_difference(y, pred, groups) == pytest.approx(0.5)


def test_evaluate_fairness_reports_groups_ratios_and_intervals() -> None:
    proba = np.column_stack([1 - PRED * 0.8, PRED * 0.8])
    preds = Predictions("binary", Y, PRED, proba, (0, 1))
    data = pd.DataFrame({"group": GROUPS})
    out = evaluate_fairness(
        data, ["group"], preds, metrics_for("binary", True), n_bootstrap=200, confidence=0.9, seed=0
    )["group"]
    assert [g.group for g in out.groups] == ["a", "b"]
    a, b = out.groups
    assert (a.selection_rate, a.true_positive_rate, a.false_positive_rate) == (0.5, 0.5, 0.5)
    assert (b.selection_rate, b.true_positive_rate, b.false_positive_rate) == pytest.approx(
        (4 / 6, 1.0, 1 / 3)
    )
    assert out.demographic_parity_ratio == pytest.approx(0.5 / (4 / 6))
    assert out.equalized_odds_ratio == pytest.approx(min(0.5 / 1.0, (1 / 3) / 0.5))
    dpd = out.demographic_parity_difference
    assert dpd is not None and dpd.value == pytest.approx(1 / 6)
    assert dpd.lower is not None and dpd.upper is not None and dpd.lower <= dpd.upper
    assert a.metrics["accuracy"] == 0.5


def test_missing_attribute_values_form_their_own_group() -> None:
    values = pd.Series(["f", None, "m", "f"])
    preds = Predictions("binary", np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]), None, (0, 1))
    out = evaluate_fairness(
        pd.DataFrame({"sex": values}), ["sex"], preds, [], n_bootstrap=0, confidence=0.9, seed=0
    )["sex"]
    assert [g.group for g in out.groups] == ["f", "m", "(missing)"]


def test_multiclass_gets_group_metrics_and_a_note_instead_of_disparities() -> None:
    preds = Predictions(
        "multiclass", np.array([0, 1, 2, 0]), np.array([0, 1, 1, 0]), None, (0, 1, 2)
    )
    out = evaluate_fairness(
        pd.DataFrame({"g": list("aabb")}),
        ["g"],
        preds,
        metrics_for("multiclass", False),
        n_bootstrap=0,
        confidence=0.9,
        seed=0,
    )["g"]
    assert out.demographic_parity_difference is None and out.note is not None
    assert out.groups[0].metrics["accuracy"] == 1.0


def test_an_attribute_with_one_group_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="Sensitive attribute 'region' has one group"):
        check_attribute(pd.Series(["north"] * 5), "region")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 1), min_size=1, max_size=30),
    st.lists(st.integers(0, 1), min_size=1, max_size=30),
    st.integers(2, 5),
)
def test_parity_is_zero_when_every_group_gets_the_same_predictions(
    base_pred: list[int], base_y: list[int], n_groups: int
) -> None:
    """Predictions independent of the group by construction: each group is a copy."""
    size = min(len(base_pred), len(base_y))
    pred = np.tile(np.array(base_pred[:size]), n_groups)
    y = np.tile(np.array(base_y[:size]), n_groups)
    groups = np.repeat(np.arange(n_groups), size)
    assert demographic_parity_difference(pred, groups) == 0.0
    eod = equalized_odds_difference(y, pred, groups)
    assert np.isnan(eod) or eod == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 3)), min_size=2, max_size=50
    )
)
def test_disparities_are_between_0_and_1(rows: list[tuple[int, int, int]]) -> None:
    y, pred, groups = (np.array(c) for c in zip(*rows, strict=True))
    dpd = demographic_parity_difference(pred, groups)
    eod = equalized_odds_difference(y, pred, groups)
    for value in (dpd, eod):
        assert np.isnan(value) or 0.0 <= value <= 1.0

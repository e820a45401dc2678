"""Data risks at log_dataset: label issues, outliers, leakage, class balance, personal data,
and the validation rules that read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelpilot.config import Settings
from modelpilot.data.risks import assess_risks, find_leakage, modified_z
from modelpilot.data.validation import declared_rules, validate
from modelpilot.errors import InvalidInput
from modelpilot.workspace import Workspace


def _flipped(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + X[:, 1] - 0.5 * X[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(int)
    flipped = rng.choice(n, size=n // 20, replace=False)  # 5% of labels flipped at random
    y[flipped] = 1 - y[flipped]
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(label=y), flipped


def test_label_issues_find_most_flipped_labels_and_few_clean_ones() -> None:
    frame, flipped = _flipped()
    issues = assess_risks(frame, label="label", label_issues=True, seed=0).label_issues
    assert issues is not None
    flagged = set(issues["rows"])
    recall = len(flagged & set(flipped.tolist())) / len(flipped)
    clean_rate = len(flagged - set(flipped.tolist())) / (len(frame) - len(flipped))
    assert recall >= 0.6, recall  # measured: 0.79
    assert clean_rate < 0.05, clean_rate  # measured: 0.007


def test_leakage_counts_rows_shared_with_the_evaluation_data_with_examples() -> None:
    frame, _ = _flipped(500)
    shared = frame.iloc[[3, 10, 42]].copy()
    shared["label"] = 1 - shared["label"]
    test = pd.concat([shared, _flipped(50, seed=9)[0]])  # duplicate index labels on purpose
    leak = assess_risks(frame, label="label", against=test, against_name="churn-test").leakage
    assert leak is not None
    assert (leak["count"], leak["against"]) == (3, "churn-test")
    assert [e["row"] for e in leak["examples"]] == [3, 10, 42]
    assert "label" not in leak["columns"]  # same features with another label still leak


def test_class_imbalance_outliers_duplicates_and_personal_data_are_reported(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "amount": np.r_[rng.normal(100, 10, 299), 10_000.0],
            "contact": [f"user{i}@example.org" for i in range(300)],
            "fraud": np.r_[np.zeros(290, dtype=int), np.ones(10, dtype=int)],
        }
    )
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    ws = Workspace(Settings(home=tmp_path))
    version = ws.log_dataset(frame, "payments", label="fraud")
    risks = version.profile["risks"]
    assert risks["class_balance"]["minority_class"] == "1"
    assert risks["class_balance"]["imbalance_ratio"] == pytest.approx(291 / 10)
    assert 299 in risks["outliers"]["rows"]
    assert risks["duplicates"] == {"count": 1, "rows": [300]}
    assert risks["pii"] == [{"column": "contact", "kind": "email", "found_by": "values"}]
    assert risks["label_issues"] is None  # opt-in
    card = ws.cards.dataset_card("payments").to_markdown()
    assert "## Data risks" in card and "personal data in 1 column(s): contact (email)" in card
    again = ws.log_dataset(frame, "payments", label="fraud", label_issues=True)
    assert again.digest == version.digest
    assert ws.get_dataset("payments").profile["risks"]["label_issues"] is not None
    ws.close()


def test_risk_rules_pass_and_fail_on_the_assessment() -> None:
    frame, _ = _flipped(1000)
    test = frame.iloc[:5]
    risks = assess_risks(frame, label="label", label_issues=True, against=test, against_name="t")
    rules = declared_rules(
        [
            {"kind": "max_label_issue_share", "column": "label", "share": 0.01},
            {"kind": "no_leakage", "against": "t"},
            {"kind": "max_pii_columns", "max": 0},
            {"kind": "min_minority_share", "column": "label", "share": 0.2},
            {"kind": "max_outlier_share", "share": 0.05},
        ]
    )
    result = validate(frame, rules, risks=risks)
    failed = {f.rule.kind: f for f in result.failures}
    assert set(failed) == {"max_label_issue_share", "no_leakage"}
    assert failed["no_leakage"].failed_rows == 5
    assert "no row also in t" in result.to_frame()["rule"].tolist()
    unassessed = validate(frame, rules[:1], risks=None)
    assert unassessed.failures[0].describe_examples() == "no data-risk assessment was made"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "max_label_issue_share", "share": 0.1}, "needs column: <the label column>"),
        ({"kind": "no_leakage"}, "a no_leakage rule needs against"),
        ({"kind": "max_pii_columns"}, "a max_pii_columns rule needs max"),
        ({"kind": "max_outlier_share", "share": 2}, "share must be between 0 and 1"),
    ],
)
def test_a_risk_rule_without_its_fields_is_refused_with_its_number(
    rule: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"Validation rule 2: .*{message}"):
        declared_rules([{"column": "x", "kind": "not_null"}, rule])


def test_bad_risk_options_say_what_to_pass() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    with pytest.raises(InvalidInput, match=r"Label column 'target' is not in the dataset"):
        assess_risks(frame, label="target")
    with pytest.raises(InvalidInput, match=r"label_issues=True needs the label column"):
        assess_risks(frame, label_issues=True)
    with pytest.raises(InvalidInput, match=r"shares no column with this dataset"):
        assess_risks(frame, against=pd.DataFrame({"z": [1]}), against_name="other")
    with pytest.raises(InvalidInput, match=r"max_rows must be a positive integer"):
        assess_risks(frame, max_rows=0)


# whole numbers: shifting 1e-170 by 1 loses it to rounding, which is not what is tested
_finite = st.integers(-(10**6), 10**6).map(float)


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, st.integers(3, 40), elements=_finite), st.floats(0.1, 100), _finite)
def test_modified_z_is_unchanged_by_shifting_and_positive_scaling(
    values: np.ndarray, scale: float, shift: float
) -> None:
    z = modified_z(values)
    moved = modified_z(values * scale + shift)
    assert np.allclose(z, moved, atol=1e-6 * (1 + np.abs(z).max()))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=30), st.lists(st.integers(21, 40)))
def test_leakage_of_a_dataset_with_itself_is_every_row_and_with_disjoint_data_none(
    values: list[int], other: list[int]
) -> None:
    frame = pd.DataFrame({"x": values})
    assert find_leakage(frame, frame, "self")["count"] == len(values)
    assert find_leakage(frame, pd.DataFrame({"x": other or [99]}), "o")["count"] == 0

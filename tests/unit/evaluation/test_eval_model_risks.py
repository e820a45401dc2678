"""Opt-in model-risk sections of evaluate(): adversarial robustness, membership inference, SHAP,
and the gate checks on them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from modelpilot.errors import InvalidInput
from modelpilot.evaluation import check_gate, evaluate, parse_policy
from modelpilot.evaluation.adversarial import AdversarialResult

FAST = {"n_bootstrap": 0, "robustness": False, "explain": False}


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] + 0.8 * rng.normal(size=n) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _data(1000, 0), _data(1000, 1)


def _membership_auc(model: object, train: pd.DataFrame, test: pd.DataFrame) -> float:
    fitted = model.fit(train[["a", "b", "c"]], train["y"])  # type: ignore[attr-defined]
    result = evaluate(fitted, test, "y", membership=True, train_data=train, **FAST)
    assert result.membership is not None
    return result.membership.auc


def test_overfit_tree_scores_clearly_above_a_regularised_one_in_membership_auc(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = split
    overfit = _membership_auc(DecisionTreeClassifier(random_state=0), train, test)
    regular = _membership_auc(DecisionTreeClassifier(max_depth=3, random_state=0), train, test)
    assert overfit > 0.6
    assert abs(regular - 0.5) < 0.05
    assert overfit - regular > 0.1


def test_gate_with_the_new_keys_fails_the_overfit_model_and_passes_the_regularised(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = split
    policy = parse_policy("membership: {max_auc: 0.6}\nadversarial: {max_flip_share: 0.5}\n")
    verdicts = {}
    for name, model in (
        ("overfit", DecisionTreeClassifier(random_state=0)),
        ("regular", DecisionTreeClassifier(max_depth=3, random_state=0)),
    ):
        fitted = model.fit(train[["a", "b", "c"]], train["y"])
        result = evaluate(
            fitted, test, "y", membership=True, train_data=train, adversarial=True, **FAST
        )
        verdicts[name] = check_gate(policy, result)
    # the unpruned tree is both leaky (AUC about 0.66) and brittle (about 75% of rows flip
    # within 5% of the ranges); the depth-3 tree has AUC about 0.51 and about 25% flips
    failed = [c.name for c in verdicts["overfit"].checks if not c.passed]
    assert failed == ["adversarial.flip_share", "membership.auc"]
    assert verdicts["regular"].passed, verdicts["regular"].checks


def test_adversarial_flip_share_matches_the_rows_near_the_decision_boundary() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.uniform(-1, 1, 400), "b": rng.uniform(-1, 1, 400)})
    frame["y"] = (frame["a"] > 0).astype(int)
    model = LogisticRegression(C=100).fit(frame[["a", "b"]], frame["y"])
    result = evaluate(model, frame, "y", adversarial=True, adversarial_budget=0.1, **FAST)
    adv = result.adversarial
    assert adv is not None and adv.rows == 200 and adv.budget == 0.1
    # a move of 10% of a's range (0.2) flips rows with |a| < 0.2: about 20% of them
    assert 0.1 < adv.flip_share < 0.3
    assert adv.by_feature.get("a", 0) > adv.by_feature.get("b", 0)
    assert "Adversarial robustness" in _html(result)


def test_adversarial_is_skipped_with_a_note_for_a_regressor() -> None:
    from sklearn.linear_model import LinearRegression

    frame = _data(200, 4).assign(y=lambda f: f["a"] * 2.0)
    model = LinearRegression().fit(frame[["a", "b", "c"]], frame["y"])
    result = evaluate(model, frame, "y", adversarial=True, **FAST)
    assert result.adversarial is None
    assert any("defined for classifiers" in n for n in result.notes)
    verdict = check_gate(parse_policy("adversarial: {max_flip_share: 0.1}"), result)
    assert not verdict.passed and "not measured" in verdict.checks[0].message


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([0.01, 0.02, 0.05, 0.1, 0.5, 1.0]))))
def test_flip_share_grows_with_the_budget(perturbations: list[float | None]) -> None:
    result = AdversarialResult(0.05, len(perturbations), 0.0, None, perturbations, {}, [], 1.0)
    shares = [result.flip_share_at(b) for b in (0.01, 0.05, 0.1, 0.5, 1.0)]
    assert shares == sorted(shares)
    assert all(0.0 <= s <= 1.0 for s in shares)


def test_tree_shap_through_the_shap_package_ranks_the_informative_feature_first(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = split
    model = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0)
    model.fit(train[["a", "b", "c"]], train["y"])
    result = evaluate(model, test, "y", shap=True, n_bootstrap=0, robustness=False)
    ex = result.explanations
    assert ex is not None and ex.shap is not None
    assert "TreeExplainer" in (ex.shap_method or "")
    assert max(ex.shap, key=lambda k: ex.shap[k] if ex.shap else 0) == "a"
    verdict = check_gate(parse_policy("explanations: {max_feature_share: 0.5}"), result)
    assert not verdict.passed and "'a' carries" in verdict.checks[0].message


def test_model_agnostic_shap_for_a_pipeline_is_bounded_in_rows(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = split
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(train[["a", "b", "c"]], train["y"])
    result = evaluate(model, test.head(300), "y", shap=True, explain=False, **{"n_bootstrap": 0})
    ex = result.explanations
    assert ex is not None and ex.shap is not None
    assert "permutation explainer" in (ex.shap_method or "")
    # at most 100 of the 300 rows are explained; on a slow machine the time bound may stop it
    # earlier, and then the notes say how many were done
    explained = int(re.search(r"(\d+) rows,", ex.shap_method or "")[1])  # type: ignore[index]
    assert 0 < explained <= 100, ex.shap_method
    if explained < 100:
        assert f"SHAP: {explained} of 100 rows explained in" in " ".join(ex.notes), ex.notes
    assert ex.shap["a"] > 3 * max(ex.shap["b"], ex.shap["c"])


def test_membership_without_training_rows_says_what_to_pass() -> None:
    frame = _data(100, 5)
    model = LogisticRegression().fit(frame[["a", "b", "c"]], frame["y"])
    with pytest.raises(InvalidInput, match=r"membership=True needs the model's training rows"):
        evaluate(model, frame, "y", membership=True, **FAST)
    with pytest.raises(InvalidInput, match=r"train_data lacks the target column 'y'"):
        evaluate(model, frame, "y", membership=True, train_data=frame.drop(columns="y"), **FAST)
    with pytest.raises(InvalidInput, match=r"lacks the model's feature column\(s\)"):
        evaluate(model, frame, "y", membership=True, train_data=frame[["a", "y"]], **FAST)


@pytest.mark.parametrize("budget", [0, -0.1, 1.5, "5%", True])
def test_an_adversarial_budget_outside_0_1_is_refused(budget: object) -> None:
    frame = _data(50, 6)
    model = LogisticRegression().fit(frame[["a", "b", "c"]], frame["y"])
    with pytest.raises(InvalidInput, match=r"adversarial_budget must be a number in \(0, 1\]"):
        evaluate(model, frame, "y", adversarial=True, adversarial_budget=budget, **FAST)  # type: ignore[arg-type]


def test_a_misspelt_risk_key_in_a_policy_names_the_line_and_the_known_keys() -> None:
    with pytest.raises(InvalidInput, match=r"line 2, membership.max_acu: unknown key.*max_auc"):
        parse_policy("name: g\nmembership: {max_acu: 0.6}\n", source="gate.yaml")
    with pytest.raises(InvalidInput, match=r"membership.max_auc"):
        parse_policy("membership: {max_auc: 0.3}\n")


def _html(result: object) -> str:
    from modelpilot.evaluation.html import render_html

    return render_html(result)  # type: ignore[arg-type]

"""Metrics against scikit-learn: point values, weighted (bootstrap) values, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from modelpilot.evaluation.metrics import METRICS, metrics_for, point_value, primary_metric
from modelpilot.evaluation.prediction import Predictions


def binary_preds(rng: np.random.Generator, n: int, *, ties: bool = False) -> Predictions:
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(y * 1.2 + rng.normal(size=n))))
    if ties:
        score = np.round(score, 1)  # many equal scores: the tie rule matters
    proba = np.column_stack([1 - score, score])
    return Predictions("binary", y, (score >= 0.5).astype(np.int64), proba, (0, 1))


def multiclass_preds(rng: np.random.Generator, n: int, k: int = 4) -> Predictions:
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions("multiclass", y, proba.argmax(axis=1), proba, tuple(range(k)))


def regression_preds(rng: np.random.Generator, n: int) -> Predictions:
    y = rng.normal(size=n) * 3
    return Predictions("regression", y, y + rng.normal(size=n), None, ())


def sklearn_value(name: str, p: Predictions, weight: np.ndarray | None = None) -> float:
    kw = {"sample_weight": weight}
    proba = p.proba if p.proba is not None else np.empty((p.n, 0))
    if name == "roc_auc":
        return float(skm.roc_auc_score(p.y, proba[:, 1], **kw))
    if name == "average_precision":
        return float(skm.average_precision_score(p.y, proba[:, 1], **kw))
    if name == "brier":
        return float(skm.brier_score_loss(p.y, proba[:, 1], **kw))
    if name == "log_loss":
        return float(skm.log_loss(p.y, proba, labels=list(range(len(p.classes))), **kw))
    if name == "roc_auc_ovr":
        return float(skm.roc_auc_score(p.y, proba, multi_class="ovr", **kw))
    simple = {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "precision": skm.precision_score,
        "recall": skm.recall_score,
        "f1": skm.f1_score,
        "mae": skm.mean_absolute_error,
        "rmse": skm.root_mean_squared_error,
        "r2": skm.r2_score,
    }
    if name == "f1_macro":
        return float(skm.f1_score(p.y, p.pred, average="macro", **kw))
    return float(simple[name](p.y, p.pred, **kw))


CASES = [
    ("binary", lambda rng: binary_preds(rng, 700)),
    ("binary ties", lambda rng: binary_preds(rng, 700, ties=True)),
    ("multiclass", lambda rng: multiclass_preds(rng, 900)),
    ("regression", lambda rng: regression_preds(rng, 500)),
]


@pytest.mark.parametrize(("label", "make"), CASES, ids=[c[0] for c in CASES])
def test_point_values_match_scikit_learn(label: str, make: object) -> None:
    p = make(np.random.default_rng(1))  # type: ignore[operator]
    for spec in metrics_for(p.task, has_proba=p.proba is not None):
        assert point_value(spec, p) == pytest.approx(sklearn_value(spec.name, p), abs=1e-10), (
            spec.name
        )


@pytest.mark.parametrize(("label", "make"), CASES, ids=[c[0] for c in CASES])
def test_resample_weights_equal_scikit_learn_sample_weight(label: str, make: object) -> None:
    """A bootstrap row is a count vector: the metric must equal sklearn with those weights."""
    p = make(np.random.default_rng(2))  # type: ignore[operator]
    w = np.random.default_rng(3).multinomial(p.n, np.full(p.n, 1 / p.n), size=3).astype(float)
    for spec in metrics_for(p.task, has_proba=p.proba is not None):
        ours = spec.fn(p, w)
        for b in range(3):
            expected = sklearn_value(spec.name, p, w[b])
            assert ours[b] == pytest.approx(expected, abs=1e-10), spec.name


def test_auc_is_undefined_not_an_error_with_one_class() -> None:
    p = Predictions(
        "binary", np.zeros(5, np.int64), np.zeros(5, np.int64), np.full((5, 2), 0.5), (0, 1)
    )
    assert np.isnan(point_value(METRICS["roc_auc"], p))
    assert point_value(METRICS["accuracy"], p) == 1.0


def test_precision_recall_f1_are_zero_when_undefined_like_scikit_learn_zero_division() -> None:
    y = np.array([0, 0, 1, 1])
    p = Predictions("binary", y, np.zeros(4, np.int64), np.full((4, 2), 0.5), (0, 1))
    assert point_value(METRICS["precision"], p) == 0.0
    assert point_value(METRICS["f1"], p) == 0.0


def test_primary_metric_per_task() -> None:
    assert primary_metric("binary", True) == "roc_auc"
    assert primary_metric("multiclass", True) == "accuracy"
    assert primary_metric("regression", False) == "rmse"
    assert [m.name for m in metrics_for("binary", has_proba=False)] == [
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])),
        min_size=4,
        max_size=40,
    ).filter(lambda rows: len({r[0] for r in rows}) == 2),
    st.randoms(use_true_random=False),
)
def test_binary_metrics_do_not_depend_on_row_order(
    rows: list[tuple[int, float]], rnd: object
) -> None:
    y = np.array([r[0] for r in rows])
    score = np.array([r[1] for r in rows])
    p = Predictions(
        "binary", y, (score >= 0.5).astype(np.int64), np.column_stack([1 - score, score]), (0, 1)
    )
    order = np.array(rnd.sample(range(len(rows)), len(rows)))  # type: ignore[attr-defined]
    shuffled = p.take(order)
    for spec in metrics_for("binary", has_proba=True):
        assert point_value(spec, shuffled) == pytest.approx(point_value(spec, p), abs=1e-12)
    auc = point_value(METRICS["roc_auc"], p)
    assert 0.0 <= auc <= 1.0
    assert auc == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5))
def test_multiclass_metrics_do_not_depend_on_row_order(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    p = multiclass_preds(rng, 60, k)
    shuffled = p.take(rng.permutation(p.n))
    for spec in metrics_for("multiclass", has_proba=True):
        a, b = point_value(spec, p), point_value(spec, shuffled)
        assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)

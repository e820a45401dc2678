"""Bootstrap intervals: nominal coverage in simulation, seeding, pairing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from modelpilot.evaluation.bootstrap import (
    percentile_interval,
    resample_counts,
    run_bootstrap,
    to_metric_value,
)
from modelpilot.evaluation.comparison import differences
from modelpilot.evaluation.metrics import METRICS
from modelpilot.evaluation.prediction import Predictions

# Binormal population: score | y=0 ~ N(0, 1), score | y=1 ~ N(SHIFT, 1), P(y=1) = PREVALENCE.
SHIFT, PREVALENCE, CUT, NOISE_SD = 1.2, 0.4, 0.6, 0.8
TRUE_AUC = float(ndtr(SHIFT / np.sqrt(2)))
TRUE_AUC_NOISY = float(ndtr(SHIFT / np.sqrt(2 * (1 + NOISE_SD**2))))
TRUE_ACCURACY = float((1 - PREVALENCE) * ndtr(CUT) + PREVALENCE * ndtr(SHIFT - CUT))
N_DATASETS, N_ROWS, N_BOOTSTRAP = 200, 300, 500


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.uniform(size=n) < PREVALENCE).astype(np.int64)
    return y, rng.normal(size=n) + SHIFT * y


def as_preds(y: np.ndarray, score: np.ndarray) -> Predictions:
    proba = 1 / (1 + np.exp(-score))
    pred = (score >= CUT).astype(np.int64)
    return Predictions("binary", y, pred, np.column_stack([1 - proba, proba]), (0, 1))


def covers(lower: float | None, upper: float | None, truth: float) -> bool:
    return lower is not None and upper is not None and lower <= truth <= upper


def test_95_percent_intervals_cover_the_population_value_at_about_the_nominal_rate() -> None:
    """200 datasets of 300 rows from a known binormal population; 500 resamples each."""
    rng = np.random.default_rng(2024)
    hits = {"roc_auc": 0, "accuracy": 0, "difference": 0}
    for i in range(N_DATASETS):
        y, score = draw(rng, N_ROWS)
        model = as_preds(y, score)
        noisy = as_preds(y, score + rng.normal(0, NOISE_SD, N_ROWS))
        stats = {
            ("model", "roc_auc"): lambda w, p=model: METRICS["roc_auc"].fn(p, w),
            ("model", "accuracy"): lambda w, p=model: METRICS["accuracy"].fn(p, w),
            ("baseline", "roc_auc"): lambda w, p=noisy: METRICS["roc_auc"].fn(p, w),
        }
        draws = run_bootstrap(N_ROWS, stats, n_bootstrap=N_BOOTSTRAP, seed=[i])
        auc = to_metric_value(("model", "roc_auc"), draws, 0.95)
        acc = to_metric_value(("model", "accuracy"), draws, 0.95)
        (diff,) = differences(draws, [METRICS["roc_auc"]], confidence=0.95)
        hits["roc_auc"] += covers(auc.lower, auc.upper, TRUE_AUC)
        hits["accuracy"] += covers(acc.lower, acc.upper, TRUE_ACCURACY)
        hits["difference"] += covers(diff.lower, diff.upper, TRUE_AUC - TRUE_AUC_NOISY)
    rates = {k: v / N_DATASETS for k, v in hits.items()}
    assert all(0.90 <= r <= 0.99 for r in rates.values()), rates


def test_regression_error_intervals_cover_the_population_value() -> None:
    """y = x + e with e ~ N(0, 1) and prediction x: RMSE = 1, MAE = sqrt(2 / pi)."""
    rng = np.random.default_rng(7)
    hits = {"rmse": 0, "mae": 0}
    truth = {"rmse": 1.0, "mae": float(np.sqrt(2 / np.pi))}
    for i in range(N_DATASETS):
        x = rng.normal(size=N_ROWS)
        p = Predictions("regression", x + rng.normal(size=N_ROWS), x, None, ())
        stats = {k: lambda w, k=k, p=p: METRICS[k].fn(p, w) for k in hits}
        draws = run_bootstrap(N_ROWS, stats, n_bootstrap=N_BOOTSTRAP, seed=[i])
        for k in hits:
            v = to_metric_value(k, draws, 0.95)
            hits[k] += covers(v.lower, v.upper, truth[k])
    rates = {k: v / N_DATASETS for k, v in hits.items()}
    assert all(0.90 <= r <= 0.99 for r in rates.values()), rates


def test_same_seed_gives_the_same_interval_and_another_seed_does_not() -> None:
    y, score = draw(np.random.default_rng(0), 400)
    p = as_preds(y, score)
    stats = {"auc": lambda w: METRICS["roc_auc"].fn(p, w)}
    a = to_metric_value("auc", run_bootstrap(400, stats, n_bootstrap=300, seed=[1]), 0.95)
    b = to_metric_value("auc", run_bootstrap(400, stats, n_bootstrap=300, seed=[1]), 0.95)
    c = to_metric_value("auc", run_bootstrap(400, stats, n_bootstrap=300, seed=[2]), 0.95)
    assert a == b
    assert a.lower != c.lower


def test_each_resample_draws_n_rows_and_chunks_cover_every_resample() -> None:
    counts = np.vstack(list(resample_counts(2_000_000 // 1000, 2500, [3])))
    assert counts.shape == (2500, 2000)
    assert np.all(counts.sum(axis=1) == 2000)
    # each row is drawn Binomial(n, 1/n) times: mean 1
    assert counts.mean() == pytest.approx(1.0)


def test_paired_difference_is_tighter_than_the_two_separate_intervals() -> None:
    rng = np.random.default_rng(5)
    y, score = draw(rng, 800)
    a, b = as_preds(y, score), as_preds(y, score + rng.normal(0, 0.3, 800))
    stats = {
        ("model", "roc_auc"): lambda w: METRICS["roc_auc"].fn(a, w),
        ("baseline", "roc_auc"): lambda w: METRICS["roc_auc"].fn(b, w),
    }
    draws = run_bootstrap(800, stats, n_bootstrap=400, seed=[0])
    (diff,) = differences(draws, [METRICS["roc_auc"]], confidence=0.95)
    ma = to_metric_value(("model", "roc_auc"), draws, 0.95)
    assert diff.lower is not None and diff.upper is not None
    assert ma.lower is not None and ma.upper is not None
    assert diff.upper - diff.lower < (ma.upper - ma.lower) / 2


def test_undefined_replicates_are_left_out_and_counted() -> None:
    lower, upper, undefined = percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0]), 0.5)
    assert undefined == 1 and lower is not None and upper is not None and 1 <= lower < upper <= 3
    assert percentile_interval(np.array([np.nan]), 0.9) == (None, None, 1)


def test_zero_resamples_give_point_values_without_intervals() -> None:
    draws = run_bootstrap(3, {"m": lambda w: w.sum(axis=1)}, n_bootstrap=0, seed=[0])
    assert to_metric_value("m", draws, 0.95).to_dict() == {
        "value": 3.0,
        "lower": None,
        "upper": None,
        "n_undefined": 0,
    }

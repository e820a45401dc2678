"""Domain-classifier drift: relations between columns, and the features that drive it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelpilot.monitoring import detect_drift, domain_classifier_drift
from modelpilot.monitoring.report import render_html


def pairs(rng: np.random.Generator, n: int, *, correlated: bool) -> pd.DataFrame:
    x = rng.normal(size=n)
    y = 0.8 * x + 0.6 * rng.normal(size=n) if correlated else rng.normal(size=n)
    return pd.DataFrame(
        {"x": x, "y": y, "noise": rng.normal(size=n), "c": rng.choice(["a", "b"], n)}
    )


def test_a_changed_relation_is_found_where_every_marginal_is_unchanged() -> None:
    rng = np.random.default_rng(41)
    reference, current = pairs(rng, 3000, correlated=False), pairs(rng, 3000, correlated=True)
    report = detect_drift(reference, current, multivariate=True, seed=1)
    assert report.drifted_columns == []  # both marginals are still N(0, 1)
    assert report.multivariate is not None and report.multivariate.drifted
    assert set(report.multivariate.top_features(2)) == {"x", "y"}
    assert report.to_dict()["multivariate"]["method"] == "domain_classifier"
    assert "Multivariate (domain classifier)" in render_html(report)


def test_no_drift_gives_an_auc_near_one_half() -> None:
    rng = np.random.default_rng(42)
    result = domain_classifier_drift(
        pairs(rng, 2000, correlated=True), pairs(rng, 2000, correlated=True), seed=0
    )
    assert not result.drifted and abs(result.auc - 0.5) < 0.05

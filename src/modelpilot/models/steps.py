"""Every estimator inside a scikit-learn model, with its path: what the converters check step by
step, and what the sklearn flavor reads to know which libraries a pipeline needs.

>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn.linear_model import LogisticRegression
>>> [path for path, _ in estimator_steps(make_pipeline(StandardScaler(), LogisticRegression()))]
['Pipeline', 'standardscaler', 'logisticregression']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def estimator_steps(estimator: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``estimator`` itself, then every step of its pipelines, column transformers and feature
    unions (fitted ones where fitted), each with its dotted path; "drop"/"passthrough" skipped."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    yield path or type(estimator).__name__, estimator
    children: list[tuple[str, Any]] = []
    if isinstance(estimator, Pipeline):
        children = [(n, s) for n, s in estimator.steps]
    elif isinstance(estimator, ColumnTransformer):
        fitted = getattr(estimator, "transformers_", estimator.transformers)
        children = [(n, t) for n, t, _ in fitted]
    elif isinstance(estimator, FeatureUnion):
        children = list(estimator.transformer_list)
    for name, child in children:
        if isinstance(child, str):  # "drop" / "passthrough"
            continue
        yield from estimator_steps(child, f"{path}.{name}" if path else name)

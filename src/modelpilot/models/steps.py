"""Every estimator inside a scikit-learn model, with its path: what the converters check step by
step, what the sklearn flavor reads to know which libraries a pipeline needs, and how the
fitted steps wrote a missing text value (:func:`missing_text_marker`).

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


def missing_text_marker(model: Any) -> Any:
    """The value ``model`` was fitted with for a missing text value: None when one of its
    encoders learnt None as a category or an imputer looks for None, else NaN.

    pandas writes a missing text value as NaN when it reads a CSV and as None when it reads
    Parquet or SQL, and scikit-learn tells them apart: ``SimpleImputer()`` (``missing_values``
    NaN) imputes NaN but passes None on, and an encoder fitted on NaN meets None as a category
    it never saw. A request's null has to reach the model as the marker it was trained on.

    >>> import numpy as np
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> missing_text_marker(OneHotEncoder().fit([["a"], [None]])) is None
    True
    >>> missing_text_marker(OneHotEncoder().fit([["a"], [np.nan]]))
    nan
    """
    from sklearn.impute import SimpleImputer

    for _, step in estimator_steps(model):
        if isinstance(step, SimpleImputer) and step.missing_values is None:
            return None
        for categories in getattr(step, "categories_", None) or ():
            if any(value is None for value in categories):
                return None
    return float("nan")

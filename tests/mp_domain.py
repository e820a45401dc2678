"""A model for the input-domain tests: a category one-hot encoded, ``income`` imputed (so
nullable in its signature), everything else passed through (so missing values are refused)."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder


def imputed_plan_model(x: pd.DataFrame, y: pd.Series) -> Pipeline:
    """Fitted on ``x`` (columns ``plan``, ``income`` and any numbers) and ``y``."""
    return make_pipeline(
        ColumnTransformer(
            [
                ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                ("income", SimpleImputer(), ["income"]),
            ],
            remainder="passthrough",
        ),
        LogisticRegression(max_iter=500),
    ).fit(x, y)

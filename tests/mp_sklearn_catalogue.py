"""The catalogue of common scikit-learn estimators and pipelines users log (the hardening
issue's): every test that must hold for "a standard model" runs over this one list, so a
model added here is checked everywhere (saved and loaded back without trust flags:
tests/contract/test_sklearn_catalogue_contract.py; converted to ONNX:
tests/unit/optimization/test_onnx_hardening_catalogue.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.naive_bayes import BernoulliNB, GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

ROWS = 120


def numeric_frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Positive numeric features (so log1p is defined), a binary and a continuous target."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.gamma(2.0, 2.0, size=(ROWS, 3)), columns=["age", "income", "calls"])
    label = (x["age"] + x["calls"] > 8).to_numpy().astype(int)
    target = (x["age"] * 0.5 + np.log1p(x["income"])).to_numpy()
    return x, label, target


def mixed_frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Numbers with NaNs and string categories with missing values, like real tabular data."""
    rng = np.random.default_rng(1)
    age = rng.normal(40, 10, ROWS)
    age[::7] = np.nan
    plan = rng.choice(np.array(["basic", "plus", "pro"], dtype=object), ROWS)
    plan[::11] = None
    region = rng.choice(np.array(["north", "south"], dtype=object), ROWS)
    x = pd.DataFrame({"age": age, "plan": plan, "region": region})
    label = ((np.nan_to_num(age, nan=40) > 40) ^ (plan == "pro")).astype(int)
    target = np.nan_to_num(age, nan=40) / 10 + (region == "north")
    return x, label, target


def tabular(final: Any, *, ordinal: bool = False) -> Pipeline:
    """The pipeline from the issue: impute numbers, encode categories, then ``final``."""
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            (
                "encode",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
                if ordinal
                else OneHotEncoder(handle_unknown="ignore"),
            ),
        ]
    )
    columns = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]),
            ("cat", categories, ["plan", "region"]),
        ]
    )
    return Pipeline([("columns", columns), ("model", final)])


# name -> (frame, task, unfitted model)
CATALOGUE: dict[str, tuple[str, str, Callable[[], Any]]] = {
    "linear-regression": ("numeric", "regress", LinearRegression),
    "ridge": ("numeric", "regress", Ridge),
    "lasso": ("numeric", "regress", lambda: Lasso(alpha=0.01)),
    "elastic-net": ("numeric", "regress", lambda: ElasticNet(alpha=0.01)),
    "logistic": ("numeric", "classify", lambda: LogisticRegression(max_iter=500)),
    "sgd": ("numeric", "classify", lambda: SGDClassifier(random_state=0)),
    "tree-clf": ("numeric", "classify", lambda: DecisionTreeClassifier(max_depth=4)),
    "tree-reg": ("numeric", "regress", lambda: DecisionTreeRegressor(max_depth=4)),
    "forest-clf": ("numeric", "classify", lambda: RandomForestClassifier(10, random_state=0)),
    "forest-reg": ("numeric", "regress", lambda: RandomForestRegressor(10, random_state=0)),
    "extra-trees": ("numeric", "classify", lambda: ExtraTreesClassifier(10, random_state=0)),
    "gb-clf": ("numeric", "classify", lambda: GradientBoostingClassifier(n_estimators=10)),
    "gb-reg": ("numeric", "regress", lambda: GradientBoostingRegressor(n_estimators=10)),
    "hgb-clf": ("numeric", "classify", lambda: HistGradientBoostingClassifier(max_iter=10)),
    "hgb-reg": ("numeric", "regress", lambda: HistGradientBoostingRegressor(max_iter=10)),
    "svc": ("numeric", "classify", lambda: make_pipeline(StandardScaler(), SVC(probability=True))),
    "linear-svc": ("numeric", "classify", lambda: make_pipeline(MinMaxScaler(), LinearSVC())),
    "svr": ("numeric", "regress", lambda: make_pipeline(StandardScaler(), SVR())),
    "knn-clf": ("numeric", "classify", lambda: KNeighborsClassifier(5)),
    "knn-reg": ("numeric", "regress", lambda: KNeighborsRegressor(5)),
    "gaussian-nb": ("numeric", "classify", GaussianNB),
    "bernoulli-nb": ("numeric", "classify", BernoulliNB),
    "log1p-ridge": (
        "numeric",
        "regress",
        lambda: make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), Ridge()),
    ),
    "tabular-hgb": (
        "mixed",
        "classify",
        lambda: tabular(HistGradientBoostingClassifier(max_iter=10)),
    ),
    "tabular-logistic": ("mixed", "classify", lambda: tabular(LogisticRegression())),
    "tabular-ordinal-forest": (
        "mixed",
        "regress",
        lambda: tabular(RandomForestRegressor(10, random_state=0), ordinal=True),
    ),
    "issue-pipeline": (
        "mixed",
        "classify",
        lambda: Pipeline(
            [
                (
                    "columns",
                    ColumnTransformer(
                        [
                            ("num", SimpleImputer(), ["age"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
                        ]
                    ),
                ),
                ("model", HistGradientBoostingClassifier(max_iter=10)),
            ]
        ),
    ),
}

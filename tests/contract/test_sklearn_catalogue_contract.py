"""Common scikit-learn estimators save, then load by alias in a fresh process, with no trust flags.

The loading side decides what is safe (skops' list plus the types scikit-learn's own estimators
need), so a standard pipeline a user logs must load back without ``trusted_types`` and predict
exactly as it did before it was saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
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

from modelpilot.config import Settings
from modelpilot.workspace import Workspace

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

LOADER = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    import modelpilot as mp

    folder = sys.argv[1]
    frames = {k: pd.read_parquet(f"{folder}/{k}.parquet") for k in ("numeric", "mixed")}
    plan = json.loads(open(f"{folder}/plan.json").read())
    out = {}
    for name, frame in plan.items():
        model = mp.load_model(f"{name}@champion")
        x = frames[frame]
        out[name] = {
            "predict": model.predict(x).tolist(),
            "proba": model.predict_proba(x).tolist() if model.classes is not None else None,
        }
    print(json.dumps(out))
    """
)


def test_catalogue_loads_by_alias_in_a_fresh_process_and_predicts_the_same(
    tmp_path: Path,
) -> None:
    frames = {"numeric": numeric_frame(), "mixed": mixed_frame()}
    home = tmp_path / "home"
    ws = Workspace(Settings(home=home))
    fitted: dict[str, Any] = {}
    try:
        for name, (frame, task, make) in CATALOGUE.items():
            x, label, target = frames[frame]
            model = make().fit(x, label if task == "classify" else target)
            mv = ws.log_model(model, name, input_example=x.head(5))
            ws.set_alias(name, "champion", mv.version)
            fitted[name] = model
    finally:
        ws.close()
    for key, (x, _, _) in frames.items():
        x.to_parquet(tmp_path / f"{key}.parquet")
    (tmp_path / "plan.json").write_text(json.dumps({n: c[0] for n, c in CATALOGUE.items()}))

    env = {**os.environ, "MODELPILOT_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout)

    # The same input the child read (parquet gives column-major blocks; BLAS sums a C- and an
    # F-ordered block in different orders, so the layout must match for bit-equal results).
    inputs = {key: pd.read_parquet(tmp_path / f"{key}.parquet") for key in frames}
    for name, model in fitted.items():
        x = inputs[CATALOGUE[name][0]]
        assert np.array_equal(np.asarray(loaded[name]["predict"]), model.predict(x)), name
        if loaded[name]["proba"] is not None:
            np.testing.assert_allclose(
                loaded[name]["proba"], model.predict_proba(x), rtol=1e-12, err_msg=name
            )
        else:
            assert not hasattr(model, "predict_proba") or CATALOGUE[name][1] == "regress", name

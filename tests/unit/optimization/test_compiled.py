"""The ``compiled`` target: a tree ensemble built into a shared library predicts like its
source, loads only when the loading side trusts its digest, and what it cannot compile is
refused with the reason. One small model is compiled once for the module (about a second);
the catalogue over every estimator Treelite reads compiles one each (slow).

Tolerances of the catalogue, and why (15% NaN in one column, in training and test rows):
- scikit-learn and LightGBM: |Δ| ≤ 1e-9 on every row (relative to max(1, |prediction|) for
  a regressor) and identical classes. The library compares the same float64 (or, for
  scikit-learn's forests and GradientBoosting, float32-rounded) values against the same
  thresholds and sums the same leaves; only the order of the sum differs (measured: ≤ 1e-15);
- XGBoost: |Δ| ≤ 1e-5 relative. XGBoost sums its float32 leaves in float32, the library in
  its own order (measured: 1.2e-7 on probabilities, 2.5e-6 on a regression).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelpilot.artifacts import MemoryArtifactStore, sha256_bytes
from modelpilot.errors import InvalidInput, UnsafeModel
from modelpilot.models import LoadedModel, PackageInfo, build_package, load_package, read_manifest
from modelpilot.models.flavors import TrustPolicy
from modelpilot.models.flavors.compiled import CompiledPredictor
from modelpilot.optimization.compile import find_compiler, to_compiled

EXACT, FLOAT32 = 1e-9, 1e-5


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows),
            "income": rng.lognormal(3, 0.5, rows),
            "visits": rng.integers(0, 20, rows).astype(np.int64),
        }
    )
    frame.loc[rng.random(rows) < 0.15, "income"] = np.nan
    return frame


def _target(frame: pd.DataFrame, classes: int = 2) -> np.ndarray:
    score = (frame["age"] - 40) / 12 + frame["income"].fillna(10) / 40 + frame["visits"] / 10
    if not classes:
        return np.asarray(score * 10)
    return np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))


def _loaded(artifacts: MemoryArtifactStore, model: object, example: pd.DataFrame) -> LoadedModel:
    return load_package(artifacts, build_package(model, artifacts, input_example=example).digest)


@pytest.fixture(scope="module")
def built() -> tuple[MemoryArtifactStore, LoadedModel, PackageInfo]:
    """A HistGradientBoosting source fitted with NaN, and its compiled package."""
    artifacts = MemoryArtifactStore()
    train = _frame(400, 0)
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(train, _target(train))
    source = _loaded(artifacts, model, train.head())
    return artifacts, source, _compiled_package(artifacts, source, train.head())


def _compiled_package(
    artifacts: MemoryArtifactStore, source: LoadedModel, example: pd.DataFrame
) -> PackageInfo:
    """``source`` compiled and packaged as optimize does: its library's digest vouched for."""
    compiled = to_compiled(source)
    return build_package(
        compiled, artifacts, input_example=example, signature=source.signature,
        trusted_types=compiled.trusted_types,
    )  # fmt: skip


def test_compiled_package_predicts_like_its_source_on_missing_values(
    built: tuple[MemoryArtifactStore, LoadedModel, PackageInfo],
) -> None:
    artifacts, source, package = built
    candidate = load_package(artifacts, package.digest, trust=TrustPolicy(package.trusted_types))
    assert candidate.flavor == "compiled" and candidate.signature == source.signature
    test = _frame(300, 1)
    assert test["income"].isna().sum() > 20
    expected = source.predict_proba(test)
    # HistGradientBoosting sums float64 leaves in the same order: equal to rounding
    assert np.abs(candidate.predict_proba(test) - expected).max() <= 1e-12
    assert (candidate.predict(test) == source.predict(test)).all()
    matrix = test.to_numpy(dtype=np.float64)  # what the data plane hands it
    assert np.abs(candidate.predictor.predict_proba(matrix) - expected).max() <= 1e-12
    assert package.trusted_types == (
        f"compiled:sha256:{sha256_bytes(_library(artifacts, package.digest))}",
    )


def _library(artifacts: MemoryArtifactStore, digest: str) -> bytes:
    return artifacts.get_bytes(read_manifest(artifacts, digest)["files"]["model.so"])


def _repackaged(artifacts: MemoryArtifactStore, digest: str, library: bytes, **meta: object) -> str:
    """The package with other library bytes or metadata, as a writer of the store could."""
    manifest = read_manifest(artifacts, digest)
    manifest["files"] = {**manifest["files"], "model.so": artifacts.put_bytes(library)}
    manifest["flavor_meta"] = {**manifest["flavor_meta"], **meta}
    return artifacts.put_bytes(json.dumps(manifest, sort_keys=True).encode())


def test_library_not_recorded_by_the_loader_is_refused_unless_code_is_trusted(
    built: tuple[MemoryArtifactStore, LoadedModel, PackageInfo],
) -> None:
    artifacts, _, package = built
    with pytest.raises(UnsafeModel, match=r"compiled models are native code, .* pass "
                       r"trusted_code=True"):  # fmt: skip
        load_package(artifacts, package.digest)
    loaded = load_package(artifacts, package.digest, trust=TrustPolicy(trusted_code=True))
    assert isinstance(loaded.predictor, CompiledPredictor)


def test_library_swapped_in_the_package_is_refused_by_its_digest(
    built: tuple[MemoryArtifactStore, LoadedModel, PackageInfo],
) -> None:
    artifacts, _, package = built
    other = _library(artifacts, package.digest) + b"\0"
    swapped = _repackaged(artifacts, package.digest, other)
    with pytest.raises(UnsafeModel, match=f"compiled:sha256:{sha256_bytes(other)}"):
        load_package(artifacts, swapped, trust=TrustPolicy(package.trusted_types))


def test_crafted_library_never_runs_without_trust(
    built: tuple[MemoryArtifactStore, LoadedModel, PackageInfo], tmp_path: Path
) -> None:
    artifacts, _, package = built
    marker = tmp_path / "pwned"
    source = tmp_path / "evil.c"
    source.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void run(void) {\n"
        f'  FILE *f = fopen("{marker}", "w"); fputs("pwned", f); fclose(f);\n}}\n'
    )
    library = tmp_path / "evil.so"
    subprocess.run([find_compiler(), "-shared", "-fPIC", "-o", str(library), str(source)],
                   check=True)  # fmt: skip
    crafted = _repackaged(artifacts, package.digest, library.read_bytes())
    with pytest.raises(UnsafeModel, match="not trusted"):
        load_package(artifacts, crafted, trust=TrustPolicy(package.trusted_types))
    assert not marker.exists()
    # Real code: trusting it runs it, and TL2cgen then finds no model in it.
    with pytest.raises(InvalidInput, match="not a model TL2cgen can call"):
        load_package(artifacts, crafted, trust=TrustPolicy(trusted_code=True))
    assert marker.read_text() == "pwned"


def test_library_built_for_another_platform_is_refused_before_loading(
    built: tuple[MemoryArtifactStore, LoadedModel, PackageInfo],
) -> None:
    artifacts, _, package = built
    moved = _repackaged(
        artifacts, package.digest, _library(artifacts, package.digest), platform="win32-arm64"
    )
    with pytest.raises(InvalidInput, match=r"built for win32-arm64; this machine is .* on the "
                       r"serving platform"):  # fmt: skip
        load_package(artifacts, moved, trust=TrustPolicy(package.trusted_types))


def test_what_is_not_a_tree_ensemble_is_refused_with_the_reason(tmp_path: Path) -> None:
    artifacts = MemoryArtifactStore()
    train = _frame(200, 0).fillna(0)
    linear = _loaded(artifacts, LogisticRegression().fit(train, _target(train)), train.head())
    with pytest.raises(InvalidInput, match=r"--to compiled applies to tree ensembles .* is a "
                       r"LogisticRegression. Use --to onnx"):  # fmt: skip
        to_compiled(linear)
    scaled = Pipeline([("scale", StandardScaler()), ("trees", RandomForestClassifier(3))])
    piped = _loaded(artifacts, scaled.fit(train, _target(train)), train.head())
    with pytest.raises(InvalidInput, match=r"step 'scale' \(StandardScaler\) transforms the "
                       r"inputs before the trees"):  # fmt: skip
        to_compiled(piped)
    text = train.assign(plan=np.where(train["age"] > 40, "pro", "basic"))
    encode = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    encoded = Pipeline([("pre", encode), ("trees", RandomForestClassifier(3))])
    categorical = _loaded(artifacts, encoded.fit(text, _target(train)), text.head())
    with pytest.raises(InvalidInput, match=r"input 'plan' is .*; a compiled tree ensemble takes "
                       r"numbers only"):  # fmt: skip
        to_compiled(categorical)
    trees = _loaded(artifacts, RandomForestClassifier(3).fit(train, _target(train)), train.head())
    with pytest.raises(InvalidInput, match=r"needs a C compiler .* none of gcc, cc, clang is on "
                       r"PATH. Install one \(Debian/Ubuntu: apt-get install gcc"):  # fmt: skip
        to_compiled(trees, search_path=str(tmp_path))


# (name, factory, classes: 0 for a regressor, takes NaN, tolerance)
CATALOGUE: list[tuple[str, Callable[[], Any], int, bool, float]] = [
    ("forest", lambda: RandomForestClassifier(20, max_depth=8, random_state=0), 2, True, EXACT),
    ("extra-trees-3-classes", lambda: ExtraTreesClassifier(20, max_depth=8, random_state=0), 3, True, EXACT),  # noqa: E501
    ("forest-regressor", lambda: RandomForestRegressor(20, max_depth=6, random_state=0), 0, True, EXACT),  # noqa: E501
    ("extra-trees-regressor", lambda: ExtraTreesRegressor(20, max_depth=6, random_state=0), 0, True, EXACT),  # noqa: E501
    ("boosting", lambda: GradientBoostingClassifier(n_estimators=30, random_state=0), 2, False, EXACT),  # noqa: E501
    ("boosting-3-classes", lambda: GradientBoostingClassifier(n_estimators=15, random_state=0), 3, False, EXACT),  # noqa: E501
    ("boosting-regressor", lambda: GradientBoostingRegressor(n_estimators=30, random_state=0), 0, False, EXACT),  # noqa: E501
    ("hist-boosting", lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), 2, True, EXACT),  # noqa: E501
    ("hist-boosting-3-classes", lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0), 3, True, EXACT),  # noqa: E501
    ("hist-boosting-regressor", lambda: HistGradientBoostingRegressor(max_iter=30, random_state=0), 0, True, EXACT),  # noqa: E501
    ("passthrough-then-forest", lambda: Pipeline([("keep", "passthrough"), ("trees", RandomForestClassifier(10, max_depth=6, random_state=0))]), 2, True, EXACT),  # noqa: E501
    ("xgboost", lambda: xgboost.XGBClassifier(n_estimators=30, max_depth=4), 2, True, FLOAT32),
    ("xgboost-3-classes", lambda: xgboost.XGBClassifier(n_estimators=20, max_depth=4), 3, True, FLOAT32),  # noqa: E501
    ("xgboost-regressor", lambda: xgboost.XGBRegressor(n_estimators=30, max_depth=4), 0, True, FLOAT32),  # noqa: E501
    ("lightgbm", lambda: lightgbm.LGBMClassifier(n_estimators=30, verbose=-1), 2, True, EXACT),
    ("lightgbm-3-classes", lambda: lightgbm.LGBMClassifier(n_estimators=20, verbose=-1), 3, True, EXACT),  # noqa: E501
    ("lightgbm-regressor", lambda: lightgbm.LGBMRegressor(n_estimators=30, verbose=-1), 0, True, EXACT),  # noqa: E501
    # the boosters' scikit-learn estimators at the end of a scikit-learn pipeline
    ("passthrough-then-xgboost", lambda: Pipeline([("keep", "passthrough"), ("trees", xgboost.XGBClassifier(n_estimators=20, max_depth=4))]), 2, True, FLOAT32),  # noqa: E501
    ("passthrough-then-lightgbm-regressor", lambda: Pipeline([("keep", "passthrough"), ("trees", lightgbm.LGBMRegressor(n_estimators=20, verbose=-1))]), 0, True, EXACT),  # noqa: E501
]  # fmt: skip


@pytest.mark.slow  # a compile each (gcc, a second or more)
@pytest.mark.parametrize(("name", "factory", "classes", "takes_nan", "tolerance"), CATALOGUE)
def test_compiled_model_agrees_with_its_source_on_missing_values(
    name: str, factory: Callable[[], Any], classes: int, takes_nan: bool, tolerance: float
) -> None:
    train, test = _frame(600, 0), _frame(1500, 1)
    if not takes_nan:  # scikit-learn's GradientBoosting refuses NaN
        train, test = train.fillna(0), test.fillna(0)
    artifacts = MemoryArtifactStore()
    source = _loaded(artifacts, factory().fit(train, _target(train, classes)), train.head())
    package = _compiled_package(artifacts, source, train.head())
    candidate = load_package(artifacts, package.digest, trust=TrustPolicy(package.trusted_types))
    assert candidate.signature == source.signature
    if classes:
        expected, got = source.predict_proba(test), candidate.predict_proba(test)
        assert list(candidate.predictor.classes_) == list(source.classes or [])  # type: ignore[attr-defined]
        assert (candidate.predict(test) == source.predict(test)).all(), name
        row_diff = np.abs(expected - got).max(axis=1)
    else:
        expected, got = source.predict(test), candidate.predict(test)
        row_diff = np.abs(expected - got) / np.maximum(1.0, np.abs(expected))
    assert row_diff.max() <= tolerance, (name, row_diff.max())

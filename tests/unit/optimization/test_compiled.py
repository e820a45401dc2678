"""The ``compiled`` target: a tree ensemble built into a shared library predicts like its
source, loads only when the loading side trusts its digest, and what it cannot compile is
refused with the reason. One small model is compiled once for the module (about a second);
the catalogue over every supported estimator is test_compiled_catalogue.py (slow)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelpilot.artifacts import MemoryArtifactStore, sha256_bytes
from modelpilot.errors import InvalidInput, UnsafeModel
from modelpilot.models import LoadedModel, PackageInfo, build_package, load_package, read_manifest
from modelpilot.models.flavors import TrustPolicy
from modelpilot.models.flavors.compiled import CompiledPredictor
from modelpilot.optimization.compile import find_compiler, to_compiled

COLUMNS = ["age", "income", "visits"]


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


def _label(frame: pd.DataFrame) -> pd.Series:
    return ((frame["age"] - 40) / 12 + frame["income"].fillna(10) / 40 > 0.5).astype(int)


def _loaded(artifacts: MemoryArtifactStore, model: object, example: pd.DataFrame) -> LoadedModel:
    return load_package(artifacts, build_package(model, artifacts, input_example=example).digest)


@pytest.fixture(scope="module")
def built() -> tuple[MemoryArtifactStore, LoadedModel, PackageInfo]:
    """A HistGradientBoosting source fitted with NaN, and its compiled package."""
    artifacts = MemoryArtifactStore()
    train = _frame(400, 0)
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(train, _label(train))
    source = _loaded(artifacts, model, train.head())
    compiled = to_compiled(source)
    package = build_package(
        compiled, artifacts, input_example=train.head(), signature=source.signature,
        trusted_types=compiled.trusted_types,
    )  # fmt: skip
    return artifacts, source, package


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
    )  # noqa: E501


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
    linear = _loaded(artifacts, LogisticRegression().fit(train, _label(train)), train.head())
    with pytest.raises(InvalidInput, match=r"--to compiled applies to tree ensembles .* is a "
                       r"LogisticRegression. Use --to onnx"):  # fmt: skip
        to_compiled(linear)
    scaled = Pipeline([("scale", StandardScaler()), ("trees", RandomForestClassifier(3))])
    piped = _loaded(artifacts, scaled.fit(train, _label(train)), train.head())
    with pytest.raises(InvalidInput, match=r"step 'scale' \(StandardScaler\) transforms the "
                       r"inputs before the trees"):  # fmt: skip
        to_compiled(piped)
    text = train.assign(plan=np.where(train["age"] > 40, "pro", "basic"))
    encode = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    encoded = Pipeline([("pre", encode), ("trees", RandomForestClassifier(3))])
    categorical = _loaded(artifacts, encoded.fit(text, _label(train)), text.head())
    with pytest.raises(InvalidInput, match=r"input 'plan' is .*; a compiled tree ensemble takes "
                       r"numbers only"):  # fmt: skip
        to_compiled(categorical)
    trees = _loaded(artifacts, RandomForestClassifier(3).fit(train, _label(train)), train.head())
    with pytest.raises(InvalidInput, match=r"needs a C compiler .* none of gcc, cc, clang is on "
                       r"PATH. Install one \(Debian/Ubuntu: apt-get install gcc"):  # fmt: skip
        to_compiled(trees, search_path=str(tmp_path))

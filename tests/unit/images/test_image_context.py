"""The build context of a model image: what ``docker build`` (or buildah, kaniko) receives.

Contexts are written for real: a registered model, modelpilot's wheel built from this checkout
and the requirements downloaded by pip as wheels (cached for the module, so the first test
pays for the download and the wheel build once).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from modelpilot.config import Settings
from modelpilot.errors import CorruptArtifact, InvalidInput, NotFound
from modelpilot.images.context import check_base
from modelpilot.images.service import ImageContext, python_minor_of, write_context
from modelpilot.images.wheel import modelpilot_wheel
from modelpilot.registry.entities import ModelVersion
from modelpilot.serving.bundle import BundledModels, read_bundle
from modelpilot.workspace import Workspace

# Build contexts hold modelpilot's wheel (built here) and the requirements' wheels (pip
# download): minutes on 2 cores, so `make test-slow` runs them (CI runs both).
pytestmark = pytest.mark.slow

MINOR = python_minor_of(None)


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])


def double(batch: Any) -> Any:
    """A python_function model (stored by import path)."""
    return np.asarray(batch, dtype=float).sum(axis=1) * 2


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="module")
def wheel(cache: Path) -> Path:
    return modelpilot_wheel(cache / "runtime")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workspace = Workspace(Settings(home=tmp_path_factory.mktemp("image-home")))
    x = frame()
    y = (x["a"] > 0).astype(int)
    with workspace.start_run():
        workspace.log_model(LogisticRegression().fit(x, y), "churn", input_example=x.head())
    workspace.log_model(LogisticRegression(C=0.5).fit(x, y), "churn", input_example=x.head())
    workspace.set_alias("churn", "champion", 1)
    boosted = XGBClassifier(n_estimators=3, max_depth=2).fit(x, y)
    workspace.log_model(boosted, "boosted", input_example=x.head())
    yield workspace
    workspace.close()


def context(
    ws: Workspace, ref: str, folder: Path, wheel: Path, cache: Path, **options: Any
) -> ImageContext:
    mv = ws.registry.get_version(ref)
    return write_context(
        folder,
        mv,
        ws.artifacts,
        wheel=wheel,
        cache_dir=cache,
        python_minor=MINOR,
        strip=False,
        **options,
    )


@pytest.fixture(scope="module")
def churn(ws: Workspace, wheel: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("contexts") / "churn"
    return context(ws, "churn@champion", folder, wheel, cache)


def requirement_names(folder: Path) -> set[str]:
    lines = (folder / "requirements.txt").read_text().splitlines()
    assert all(re.fullmatch(r"[a-z0-9-]+==[A-Za-z0-9.+!-]+", line) for line in lines), lines
    return {line.split("==")[0] for line in lines}


def test_dockerfile_orders_requirements_then_runtime_then_model(churn: ImageContext) -> None:
    text = (churn.folder / "Dockerfile").read_text()
    steps = [
        "COPY requirements.txt",
        "COPY wheelhouse/",
        "--find-links /tmp/wheelhouse -r /tmp/requirements.txt",
        "COPY --from=requirements /opt/modelpilot/venv",
        "COPY runtime/modelpilot-",
        "USER 10001:10001",
        "HEALTHCHECK",
        "COPY model/ /opt/modelpilot/model/",
        "COPY sbom.cdx.json /opt/modelpilot/sbom.cdx.json",
        "LABEL ",
        "ENTRYPOINT ",
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)
    # what changes with each model version comes after everything that does not
    assert "churn" not in text[: text.index("COPY model/")]
    assert text.startswith("# Written by modelpilot") and "FROM python:" + MINOR in text


def test_entrypoint_serves_the_resolved_version_as_a_non_root_user(churn: ImageContext) -> None:
    text = (churn.folder / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["modelpilot", "serve", "churn/1"]' in text  # champion -> 1
    assert re.search(r"^USER 10001:10001$", text, re.M)
    health = next(line for line in text.splitlines() if line.lstrip().startswith("CMD"))
    assert "/v2/health/ready" in health
    for setting in ('HOST="0.0.0.0"', 'PORT="8080"', 'BUNDLE="/opt/modelpilot/model"'):
        assert f"MODELPILOT_SERVE_{setting}" in text


def test_labels_carry_the_lineage(churn: ImageContext, ws: Workspace) -> None:
    mv = ws.registry.get_version("churn/1")
    labels = json.loads((churn.folder / "image.json").read_text())["labels"]
    assert labels["io.modelpilot.model"] == "churn"
    assert labels["io.modelpilot.version"] == labels["org.opencontainers.image.version"] == "1"
    assert labels["io.modelpilot.package-digest"] == f"sha256:{mv.package_digest}"
    assert labels["io.modelpilot.run-id"] == mv.run_id and mv.run_id
    assert labels["io.modelpilot.python"] == MINOR
    text = (churn.folder / "Dockerfile").read_text()
    for key, value in labels.items():
        assert f"{key}={json.dumps(value)}" in text


def test_requirements_are_the_flavors_and_the_runtime_without_dev_extras(
    churn: ImageContext,
) -> None:
    names = requirement_names(churn.folder)
    assert {"scikit-learn", "skops", "numpy", "pandas", "uvicorn", "starlette"} <= names
    left_out_names = ("xgboost", "lightgbm", "pytest", "hypothesis", "ruff", "mypy", "ray")
    for left_out in (*left_out_names, "duckdb"):
        assert left_out not in names
    assert "modelpilot" not in names  # installed from its own wheel, in its own layer
    wheels = {
        p.name.split("-")[0].lower().replace("_", "-")
        for p in churn.folder.glob("wheelhouse/*.whl")
    }
    assert {n.replace("-", "_") for n in names} == {w.replace("-", "_") for w in wheels}


def test_an_xgboost_model_brings_xgboost_but_no_gpu_runtime(
    ws: Workspace, wheel: Path, cache: Path, tmp_path: Path
) -> None:
    built = context(ws, "boosted/1", tmp_path / "ctx", wheel, cache)
    names = requirement_names(built.folder)
    assert "xgboost" in names and "lightgbm" not in names
    assert not [n for n in names if n.startswith("nvidia-")]


def test_sbom_is_valid_cyclonedx_listing_what_is_installed(churn: ImageContext) -> None:
    text = (churn.folder / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None
    sbom = json.loads(text)
    listed = {c["name"]: c["version"] for c in sbom["components"]}
    pinned = dict(
        line.split("==") for line in (churn.folder / "requirements.txt").read_text().split()
    )
    assert listed == {**pinned, "modelpilot": churn.plan.modelpilot_version}
    subject = sbom["metadata"]["component"]
    assert subject["name"] == "churn" and subject["version"] == "1"
    digest = json.loads((churn.folder / "image.json").read_text())["package_digest"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": digest}]


def test_the_bundle_holds_the_verified_package_and_loads(
    churn: ImageContext, ws: Workspace
) -> None:
    bundled = read_bundle(churn.folder / "model")
    assert (bundled.name, bundled.version, bundled.aliases) == ("churn", 1, ("champion",))
    models = BundledModels(churn.folder / "model", cache_dir=churn.folder.parent / "cache")
    assert models.resolve("churn@champion") == models.resolve("churn") == ("churn", 1)
    x = frame().head(8)
    expected = ws.load_model("churn/1").predict(x)
    assert (models.load("churn/1").predict(x) == expected).all()


def test_a_package_that_does_not_verify_is_refused_and_nothing_is_written(
    ws: Workspace, wheel: Path, cache: Path, tmp_path: Path
) -> None:
    x = frame()
    mv: ModelVersion = ws.log_model(
        LogisticRegression(C=2.0).fit(x, (x["b"] > 0).astype(int)),
        "tampered",
        input_example=x.head(),
    )
    manifest = json.loads(ws.artifacts.get_bytes(mv.package_digest))
    model_file = next(iter(manifest["files"].values()))
    blob = ws.settings.resolved_artifact_root() / model_file[:2] / model_file[2:]
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    with pytest.raises(
        CorruptArtifact, match=r"The package of tampered/1 does not verify: .*Nothing was packaged"
    ):
        context(ws, "tampered/1", tmp_path / "ctx", wheel, cache)
    assert list(tmp_path.iterdir()) == []


def test_a_python_function_model_is_refused(
    ws: Workspace, wheel: Path, cache: Path, tmp_path: Path
) -> None:
    ws.log_model(double, "pyfunc", input_example=frame().head())
    with pytest.raises(
        InvalidInput, match=r"pyfunc/1 is a python_function model: .*by import path"
    ):
        context(ws, "pyfunc/1", tmp_path / "ctx", wheel, cache)


def test_a_base_with_another_python_is_refused_naming_both(
    ws: Workspace, wheel: Path, cache: Path, tmp_path: Path
) -> None:
    other = "3.10" if MINOR != "3.10" else "3.12"
    with pytest.raises(
        InvalidInput, match=rf"has Python {other}, but the package was made with Python {MINOR}"
    ):
        context(ws, "churn/2", tmp_path / "ctx", wheel, cache, base=f"python:{other}-slim")


def test_a_non_empty_folder_is_refused(
    ws: Workspace, wheel: Path, cache: Path, tmp_path: Path
) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match=r"exists and is not an empty folder"):
        context(ws, "churn/2", tmp_path / "ctx", wheel, cache)
    assert [p.name for p in (tmp_path / "ctx").iterdir()] == ["notes.txt"]


def test_a_new_version_changes_only_the_model_layers(
    churn: ImageContext, ws: Workspace, wheel: Path, cache: Path, tmp_path: Path
) -> None:
    second = context(ws, "churn/2", tmp_path / "ctx", wheel, cache)
    before, after = ((c.folder / "Dockerfile").read_text() for c in (churn, second))
    cut = before.index("COPY model/")
    assert before[:cut].replace("churn/1", "") == after[: after.index("COPY model/")].replace(
        "churn/2", ""
    )
    for shared in ("requirements.txt", f"runtime/{wheel.name}"):
        assert (churn.folder / shared).read_bytes() == (second.folder / shared).read_bytes()


@given(
    tag_minor=st.integers(min_value=6, max_value=20),
    package_minor=st.integers(min_value=6, max_value=20),
    suffix=st.sampled_from(["", "-slim", "-slim-bookworm", ".4-slim", ".11-alpine"]),
    registry=st.sampled_from(["", "docker.io/library/", "mirror.example.com:5000/"]),
)
def test_official_python_bases_are_checked_by_their_tag(
    tag_minor: int, package_minor: int, suffix: str, registry: str
) -> None:
    base = f"{registry}python:3.{tag_minor}{suffix}"
    if tag_minor == package_minor:
        check_base(base, f"3.{package_minor}")
    else:
        with pytest.raises(
            InvalidInput, match=rf"has Python 3\.{tag_minor}, .* Python 3\.{package_minor}"
        ):
            check_base(base, f"3.{package_minor}")


@given(st.sampled_from(["my-base:latest", "debian:bookworm", "ghcr.io/acme/py:prod"]))
def test_other_bases_are_left_to_the_build_check(base: str) -> None:
    check_base(base, MINOR)


def test_the_bundle_names_what_it_holds_when_asked_for_another_version(
    churn: ImageContext,
) -> None:
    models = BundledModels(churn.folder / "model", cache_dir=churn.folder.parent / "cache")
    with pytest.raises(NotFound, match=r"'churn/2' is not in the bundle .*churn/1, churn@champion"):
        models.resolve("churn/2")
    with pytest.raises(InvalidInput, match=r"is not a model bundle"):
        read_bundle(churn.folder)

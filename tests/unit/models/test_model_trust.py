"""What may run when a model loads is decided by the loading side, never by the package."""

from __future__ import annotations

import operator
from pathlib import Path

import pytest
import skops.io
from crafted_packages import double, frame, skops_calling, store_package
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from modelpilot import registry
from modelpilot.errors import UnsafeModel
from modelpilot.models import TrustPolicy, load_package, read_manifest
from modelpilot.workspace import Workspace


def register(ws: Workspace, name: str, digest: str) -> int:
    """Register a stored package the way any writer of the store could, with no trust."""
    manifest = read_manifest(ws.artifacts, digest)
    mv = registry.register_version(
        ws.store,
        name,
        package_digest=digest,
        flavor=manifest["flavor"],
        signature=manifest["signature"],
    )
    return mv.version


def test_crafted_skops_file_is_real_code_execution(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.skops"
    path.write_bytes(skops_calling(f"echo pwned > {marker}"))
    assert skops.io.get_untrusted_types(file=path) == ["posix.system"]
    skops.io.load(path, trusted=["posix.system"])
    assert marker.read_text() == "pwned\n"


def test_skops_types_vouched_by_the_package_are_refused_and_never_run(
    ws: Workspace, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    digest = store_package(
        ws.artifacts,
        flavor="sklearn",
        flavor_meta={
            "file": "model.skops",
            "class": "sklearn.linear_model.LogisticRegression",
            "vouched_types": ["posix.system"],
        },
        files={"model.skops": skops_calling(f"echo pwned > {marker}")},
    )
    ws.set_alias("crafted", "champion", register(ws, "crafted", digest))
    with pytest.raises(
        UnsafeModel,
        match=r"Refusing to load crafted/1: its sklearn\.linear_model\.LogisticRegression file "
        r"contains types that are not trusted: posix\.system\. .*never a list inside the "
        r"package.*trusted_types=\['posix\.system'\]",
    ):
        ws.load_model("crafted@champion")
    with pytest.raises(UnsafeModel, match=rf"load package {digest[:12]}.*not trusted: posix"):
        load_package(ws.artifacts, digest, trust=TrustPolicy(), cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_types_trusted_at_log_time_are_recorded_on_the_version(ws: Workspace) -> None:
    x = frame()
    y = (x["age"] > 0).astype(int)
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(x, y)
    mv = ws.log_model(
        model, "negated", input_example=x.head(), trusted_types=["_operator.neg", "os.system"]
    )
    assert mv.trusted_types == ("_operator.neg",)  # only what the file holds is recorded
    assert ws.get_model_version("negated/1").trusted_types == ("_operator.neg",)
    assert (ws.load_model("negated/1").predict(x) == model.predict(x)).all()
    untrusted = ws.log_model(model, "negated", input_example=x.head())
    assert untrusted.trusted_types == ()
    with pytest.raises(UnsafeModel, match=r"not trusted: _operator\.neg"):
        ws.load_model(untrusted.ref)


def test_python_function_package_is_refused_without_trusted_code(ws: Workspace) -> None:
    digest = store_package(
        ws.artifacts,
        flavor="python_function",
        flavor_meta={"callable": "os:system", "kind": "function"},
        files={},
    )
    ref = f"pyfunc/{register(ws, 'pyfunc', digest)}"
    with pytest.raises(
        UnsafeModel,
        match=r"Refusing to load pyfunc/1: python_function models import and call code by "
        r"path, and this one names 'os:system'\. .*pass trusted_code=True",
    ):
        ws.load_model(ref)
    assert ws.load_model(ref, trusted_code=True).flavor == "python_function"


def test_own_python_function_logged_with_log_model_keeps_loading(ws: Workspace) -> None:
    x = frame()
    mv = ws.log_model(double, "doubler", input_example=x.head())
    assert mv.trusted_types == ("crafted_packages:double",)
    assert (ws.load_model("doubler").predict(x) == double(x)).all()

"""A manifest names files by plain names only; nothing is written outside the cache folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import skops.io
from crafted_packages import frame, store_package
from sklearn.linear_model import LogisticRegression

from modelpilot.errors import UnsafeModel
from modelpilot.models import TrustPolicy, load_package
from modelpilot.workspace import Workspace


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def model_bytes(tmp_path: Path) -> bytes:
    x = frame()
    path = tmp_path / "genuine.skops"
    skops.io.dump(LogisticRegression().fit(x, (x["age"] > 0).astype(int)), path)
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize(
    "bad_name",
    ["../evil.py", "ABSOLUTE", "sub/evil.py", "..", ".", "evil py", "evil.py\n", ""],
)
def test_manifest_file_name_that_is_not_plain_is_refused_and_nothing_is_written(
    ws: Workspace, tmp_path: Path, bad_name: str
) -> None:
    outside = tmp_path / "site-packages"
    outside.mkdir()
    name = str(outside / "evil.py") if bad_name == "ABSOLUTE" else bad_name
    digest = store_package(
        ws.artifacts,
        flavor="sklearn",
        flavor_meta={"file": "model.skops"},
        files={"model.skops": model_bytes(tmp_path), name: b"import os\n"},
    )
    cache = tmp_path / "cache"
    before = files_under(tmp_path)
    with pytest.raises(
        UnsafeModel,
        match=rf"package {digest[:12]}….*file name {re.escape(repr(name))}, which is not a "
        r"plain file name \(expected one path segment of \[A-Za-z0-9\._-\]",
    ):
        load_package(ws.artifacts, digest, trust=TrustPolicy(), cache_dir=cache)
    with pytest.raises(UnsafeModel, match=re.escape(repr(name))):
        load_package(ws.artifacts, digest, trust=TrustPolicy())  # temporary folder
    written = files_under(tmp_path) - before
    assert not [p for p in written if not p.is_relative_to(cache / digest)]
    assert not (tmp_path / "evil.py").exists() and not (outside / "evil.py").exists()


def test_flavor_file_must_be_one_of_the_package_files(ws: Workspace, tmp_path: Path) -> None:
    digest = store_package(
        ws.artifacts,
        flavor="sklearn",
        flavor_meta={"file": "../../model.skops"},
        files={"model.skops": model_bytes(tmp_path)},
    )
    with pytest.raises(UnsafeModel, match=r"file name '\.\./\.\./model\.skops'"):
        load_package(ws.artifacts, digest, cache_dir=tmp_path / "cache")
    other = store_package(
        ws.artifacts,
        flavor="sklearn",
        flavor_meta={"file": "other.skops"},
        files={"model.skops": model_bytes(tmp_path)},
    )
    with pytest.raises(UnsafeModel, match=r"'other\.skops'.*not one of its files: model\.skops"):
        load_package(ws.artifacts, other, cache_dir=tmp_path / "cache")

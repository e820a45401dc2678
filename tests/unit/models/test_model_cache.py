"""Cached package files are verified against their digests on every load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skops.io
from crafted_packages import frame
from sklearn.linear_model import LogisticRegression

from modelpilot.artifacts import sha256_file
from modelpilot.workspace import Workspace


def test_tampered_cached_file_is_replaced_by_the_original_on_next_load(ws: Workspace) -> None:
    x = frame()
    y = (x["age"] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    mv = ws.log_model(model, "churn", input_example=x.head())
    ws.set_alias("churn", "champion", mv.version)
    np.testing.assert_array_equal(ws.load_model("churn@champion").predict(x), model.predict(x))

    cached = ws.settings.home / "cache" / "packages" / mv.package_digest / "model.skops"
    genuine = sha256_file(cached)
    skops.io.dump(LogisticRegression().fit(x, 1 - y), cached)  # someone swaps the model
    assert sha256_file(cached) != genuine

    np.testing.assert_array_equal(ws.load_model("churn@champion").predict(x), model.predict(x))
    assert sha256_file(cached) == genuine


def test_link_planted_in_the_cache_is_replaced_not_followed(ws: Workspace, tmp_path: Path) -> None:
    x = frame()
    model = LogisticRegression().fit(x, (x["age"] > 0).astype(int))
    mv = ws.log_model(model, "churn", input_example=x.head())
    ws.load_model(mv.ref)
    cached = ws.settings.home / "cache" / "packages" / mv.package_digest / "model.skops"
    elsewhere = tmp_path / "elsewhere.skops"
    skops.io.dump(LogisticRegression().fit(x, (x["age"] <= 0).astype(int)), elsewhere)
    before = elsewhere.read_bytes()
    cached.unlink()
    cached.symlink_to(elsewhere)

    np.testing.assert_array_equal(ws.load_model(mv.ref).predict(x), model.predict(x))
    assert not cached.is_symlink() and elsewhere.read_bytes() == before

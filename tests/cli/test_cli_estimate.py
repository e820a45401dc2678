"""``modelpilot monitor estimate``, run as the installed executable: label-free performance
of a multiclass classifier (CBPE) and a regressor (DLE) from files, as a CI job runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = np.array(["cat", "dog", "fox"])


def _run(exe: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    return subprocess.run(
        [exe, "monitor", "estimate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _multiclass(rng: np.random.Generator, n: int, concentration: float) -> pd.DataFrame:
    p = rng.dirichlet([concentration] * 3, n)
    labels = (rng.random(n)[:, np.newaxis] > np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)
    frame = pd.DataFrame({f"p_{c}": p[:, j] for j, c in enumerate(CLASSES)})
    return frame.assign(pred=CLASSES[p.argmax(axis=1)], target=CLASSES[labels])


def _regression(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    x = rng.normal(shift, 1, n)
    colour = rng.choice(CLASSES, n)
    noise = (0.3 + 0.4 * np.abs(x) + 0.5 * (colour == "dog")) * rng.normal(size=n)
    return pd.DataFrame({"x": x, "colour": colour, "pred": 2 * x, "target": 2 * x + noise})


def test_multiclass_estimate_tracks_the_realised_accuracy_and_writes_json(
    exe: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(61)
    reference, analysis = tmp_path / "reference.csv", tmp_path / "analysis.parquet"
    _multiclass(rng, 8000, 2.0).to_csv(reference, index=False)
    pd.concat([_multiclass(rng, 4000, 2.0), _multiclass(rng, 4000, 0.7)]).to_parquet(analysis)
    out = tmp_path / "estimate.json"
    proba = [a for c in CLASSES for a in ("--proba", f"{c}=p_{c}")]
    result = _run(
        exe, tmp_path, str(reference), str(analysis), *proba, "-m", "accuracy", "-m", "f1",
        "--chunk-size", "4000", "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "ALERT" in result.stdout
    rows = pd.DataFrame(json.loads(out.read_text()))
    assert (rows["estimated"] - rows["realised"]).abs().max() < 0.03
    assert rows["alert"].tolist() == [False, True, False, True]  # the shifted chunk


def test_regression_estimate_from_named_features_writes_csv(exe: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(62)
    reference, analysis = tmp_path / "reference.parquet", tmp_path / "analysis.csv"
    _regression(rng, 6000, 0.0).to_parquet(reference)
    unlabelled = pd.concat([_regression(rng, 3000, 0.0), _regression(rng, 3000, 1.0)])
    unlabelled.drop(columns="target").to_csv(analysis, index=False)
    out = tmp_path / "estimate.csv"
    result = _run(
        exe, tmp_path, str(reference), str(analysis), "--task", "regression",
        "--feature", "x", "--feature", "colour", "-m", "mae", "--chunk-size", "3000",
        "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(out)
    truth = (unlabelled["target"] - unlabelled["pred"]).abs().to_numpy()
    realised = [truth[:3000].mean(), truth[3000:].mean()]
    assert rows["realised"].isna().all()  # no labels in the analysis file
    np.testing.assert_allclose(rows["estimated"], realised, rtol=0.1)
    assert rows["alert"].tolist() == [False, True]


def test_bad_input_is_one_line_and_exit_2(exe: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(63)
    reference, analysis = tmp_path / "reference.csv", tmp_path / "analysis.csv"
    frame = _regression(rng, 200, 0.0)
    frame.to_csv(reference, index=False)
    frame.assign(pred=frame["pred"].where(frame.index != 5)).to_csv(analysis, index=False)
    broken = _run(exe, tmp_path, str(reference), str(analysis), "--task", "regression")
    mixed = _run(exe, tmp_path, str(reference), str(reference), "--proba", "cat=p", "--proba", "q")
    for result, message in (
        (broken, "The analysis column 'pred' must hold finite numbers with no nulls; row 5 is"),
        (mixed, "--proba 'q' is not CLASS=COLUMN"),
    ):
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1

"""Dataset versions: content hash, profile, reference storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames

from modelpilot.data.profile import compute_profile
from modelpilot.data.service import content_digest
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.workspace import Workspace


def test_same_content_gives_same_version_and_one_blob(ws: Workspace) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    first = ws.log_dataset(frame, "d")
    second = ws.log_dataset(frame.copy(), "d")
    assert first.digest == second.digest
    changed = ws.log_dataset(frame.assign(a=[1, 2, 4]), "d")
    assert changed.digest != first.digest
    pd.testing.assert_frame_equal(ws.load_dataset(first.ref), frame)
    assert ws.get_dataset("d").digest == changed.digest  # newest


def test_profile_counts_nulls_and_top_categories(ws: Workspace) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0], "c": ["a", "a", "b", None]})
    version = ws.log_dataset(frame, "p")
    cols = version.profile["columns"]
    assert cols["x"]["nulls"] == 1 and cols["x"]["min"] == 1.0 and cols["x"]["max"] == 4.0
    assert cols["c"]["top"] == {"a": 2, "b": 1}
    assert version.schema[0] == {"name": "x", "dtype": "float64", "nullable": True}


def test_file_reference_is_hashed_and_profiled_without_copying(
    ws: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "big.parquet"
    pd.DataFrame({"v": np.arange(1000, dtype=float), "k": ["a", "b"] * 500}).to_parquet(path)
    version = ws.log_dataset(path, "big")
    assert version.storage == "reference" and version.num_rows == 1000
    assert version.profile["columns"]["v"]["max"] == 999.0
    assert len(ws.load_dataset(version.ref)) == 1000
    path.write_bytes(b"changed")
    with pytest.raises(NotFound, match="missing or has changed"):
        ws.load_dataset(version.ref)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv.gz"])
def test_a_file_with_infinities_is_profiled_like_a_frame(
    ws: Workspace, tmp_path: Path, suffix: str
) -> None:
    """inf, -inf, NaN and huge values in a file logged by reference: the statistics skip the
    non-finite values, as the in-memory profile does, instead of failing the log."""
    frame = pd.DataFrame(
        {
            "x": [1.0, np.inf, -np.inf, np.nan, 3.0, 2.0],
            "huge": [1e308, -1e308, 1e308, 0.0, 5.0, 7.0],
            "n": [1, 2, 3, 4, 5, 6],
            "only_inf": [np.inf] * 6,
            "k": ["a", "b", None, "a", "c", "a"],
        }
    )
    path = tmp_path / f"odd{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:  # (pandas gzips a file named .gz)
        frame.to_csv(path, index=False, sep="," if suffix == ".csv" else "\t")
    version = ws.log_dataset(path, f"odd-{suffix[1:].replace('.', '-')}")
    cols, expected = version.profile["columns"], compute_profile(frame)["columns"]
    assert version.num_rows == 6
    for name in ("x", "n", "huge"):
        assert cols[name]["kind"] == "numeric"
        for key in ("min", "max"):
            assert cols[name][key] == expected[name][key], (name, key)
    assert cols["x"]["mean"] == pytest.approx(2.0)
    assert cols["huge"]["std"] is None or np.isfinite(cols["huge"]["std"])
    if suffix == ".parquet":  # (DuckDB's CSV sniffer reads a column of "inf" as dates)
        assert "min" not in cols["only_inf"] and cols["only_inf"]["kind"] == "numeric"
    assert cols["k"]["kind"] == "categorical" and cols["k"]["nulls"] == 1
    assert cols["k"]["unique"] == 3


def test_unknown_dataset_version_lists_recent_versions(ws: Workspace) -> None:
    version = ws.log_dataset(pd.DataFrame({"a": [1]}), "d")
    with pytest.raises(NotFound, match=f"Recent versions: {version.version}"):
        ws.get_dataset("d@ffffffff")


def test_unhashable_cells_are_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="Columns must hold scalars"):
        ws.log_dataset(pd.DataFrame({"a": [[1], [2]]}), "d")


@settings(max_examples=50, deadline=None)
@given(data_frames([column("a", dtype=float), column("b", dtype=int)]))
def test_digest_ignores_the_index_but_not_the_values(frame: pd.DataFrame) -> None:
    shuffled_index = frame.set_axis(list(range(100, 100 + len(frame))))
    assert content_digest(frame) == content_digest(shuffled_index)
    profile = compute_profile(frame)
    assert profile["num_rows"] == len(frame)
    assert profile["columns"]["a"]["nulls"] == int(frame["a"].isna().sum())


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=50)
)
def test_profile_min_le_quantiles_le_max(values: list[float]) -> None:
    stats = compute_profile(pd.DataFrame({"v": values}))["columns"]["v"]
    quantiles = list(stats["quantiles"].values())
    assert stats["min"] <= min(quantiles) and max(quantiles) <= stats["max"]
    assert quantiles == sorted(quantiles)

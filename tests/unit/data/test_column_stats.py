"""Column statistics read from stored datasets (the training domain's source)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelpilot.data.column_stats import ColumnStats, column_stats
from modelpilot.data.service import file_version, frame_version
from modelpilot.errors import NotFound
from modelpilot.workspace import Workspace

FRAME = pd.DataFrame(
    {
        "x": [1.0, np.nan, 3.0, np.inf, -2.0],
        "n": [1, 2, 3, 4, 5],
        "s": ["a", None, "b", "a", "c"],
        "flag": [True, False, None, True, True],
    }
)
KINDS = {"x": "number", "n": "number", "s": "category", "flag": "other", "gone": "number"}
EXPECTED = {
    "x": ColumnStats(5, 1, -2.0, 3.0),  # NaN counts as missing; inf is not a finite bound
    "n": ColumnStats(5, 0, 1.0, 5.0),
    "s": ColumnStats(5, 1, values=frozenset({"a", "b", "c"})),
    "flag": ColumnStats(5, 1),
}


def test_stats_of_a_dataset_stored_by_value(ws: Workspace) -> None:
    version = frame_version(ws.artifacts, FRAME, "t", None)
    assert column_stats(ws.artifacts, version, KINDS) == EXPECTED  # "gone" is left out


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv", ".csv.gz", ".TSV.GZ"])
def test_stats_of_a_file_kept_by_reference(ws: Workspace, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    frame = FRAME.replace(np.inf, 0.0)  # DuckDB's profile of a file refuses inf (its STDDEV)
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        sep = "\t" if "tsv" in suffix.lower() else ","
        gzip = "gzip" if suffix.lower().endswith(".gz") else None
        frame.to_csv(path, index=False, sep=sep, compression=gzip)
    version = file_version(path, "t", None)
    stats = column_stats(ws.artifacts, version, KINDS)
    assert stats["n"] == EXPECTED["n"] and stats["s"] == EXPECTED["s"]
    assert (stats["x"].low, stats["x"].high, stats["x"].nulls) == (-2.0, 3.0, 1)
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(NotFound, match="missing or has changed"):
        column_stats(ws.artifacts, version, KINDS)


def test_text_in_a_number_column_leaves_the_column_out(ws: Workspace) -> None:
    version = frame_version(ws.artifacts, pd.DataFrame({"x": ["1", "ten"]}), "t", None)
    assert column_stats(ws.artifacts, version, {"x": "number"}) == {}


def test_more_distinct_values_than_the_limit_keep_no_set(ws: Workspace) -> None:
    frame = pd.DataFrame({"s": [f"v{i}" for i in range(50)]})
    version = frame_version(ws.artifacts, frame, "t", None)
    assert column_stats(ws.artifacts, version, {"s": "category"}, max_values=49)["s"].values is None
    assert len(column_stats(ws.artifacts, version, {"s": "category"})["s"].values or ()) == 50


def test_rows_past_the_bound_are_not_read(ws: Workspace) -> None:
    frame = pd.DataFrame({"x": np.arange(200_000, dtype=float)})
    version = frame_version(ws.artifacts, frame, "t", None)
    stats = column_stats(ws.artifacts, version, {"x": "number"}, max_rows=100_000)["x"]
    assert 100_000 <= stats.rows < 200_000 and stats.high == stats.rows - 1


def test_merged_stats_cover_both_sets_of_rows() -> None:
    a = ColumnStats(10, 0, 1.0, 5.0, frozenset({"a"}))
    b = ColumnStats(20, 2, -1.0, 3.0, frozenset({"b"}))
    assert a.merge(b) == ColumnStats(30, 2, -1.0, 5.0, frozenset({"a", "b"}))
    assert a.merge(ColumnStats(5, 0)).values is None  # one side without a set: no set

"""Which files modelpilot reads as tables, and how each entry point refuses the others."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.config import Settings
from modelpilot.errors import InvalidInput
from modelpilot.tables import ACCEPTED, read_frame, require_table, table_kind
from modelpilot.workspace import Workspace

KINDS = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv", ".tsv.gz": "tsv"}
OTHERS = [".xlsx", ".json", ".gz", ".csv.bz2", ".parquet.gz", ".csv.zip", ".txt", "", ".csvx"]
stems = st.text(st.characters(blacklist_characters="/\0", codec="utf-8"), min_size=1).filter(
    lambda s: s not in (".", "..")
)


@pytest.fixture
def local_ws(sqlite_settings: Settings) -> Iterator[Workspace]:
    """A workspace on SQLite (where the metadata lives is not what these tests are about)."""
    with closing(Workspace(sqlite_settings)) as workspace:
        yield workspace


def _rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    """The rows with any missing marker (None, NaN) as None: a CSV reads None back as NaN."""
    return list(frame.astype(object).where(frame.notna(), None).itertuples(index=False))


def _cased(suffix: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c for c, flip in zip(suffix, flips, strict=False))


@given(stems, st.sampled_from(sorted(KINDS)), st.lists(st.booleans(), min_size=8, max_size=8))
def test_an_accepted_suffix_in_any_case_names_the_kind(
    stem: str, suffix: str, flips: list[bool]
) -> None:
    assert table_kind(Path(stem + _cased(suffix, flips))) == KINDS[suffix]


@given(stems, st.sampled_from(OTHERS))
def test_any_other_suffix_is_no_table(stem: str, suffix: str) -> None:
    name = stem + suffix
    if any(name.lower().endswith(accepted) for accepted in KINDS):
        return  # (the stem itself ended in an accepted suffix: "x.csv" + "")
    assert table_kind(Path(name)) is None


def test_require_table_names_what_is_wrong_and_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"book\.xlsx is not a table file") as wrong:
        require_table(tmp_path / "book.xlsx", "The data file", "data")
    assert ACCEPTED in str(wrong.value) and wrong.value.field == "data"
    with pytest.raises(InvalidInput, match="does not exist"):
        require_table(tmp_path / "gone.csv.gz", "The data file", "data")


@pytest.mark.parametrize("suffix", sorted(KINDS))
def test_each_kind_reads_back_the_frame_by_reference_and_in_memory(
    local_ws: Workspace, tmp_path: Path, suffix: str
) -> None:
    frame = pd.DataFrame({"age": [31, 45, 27], "plan": ["basic", None, "pro, annual"]})
    path = tmp_path / f"customers{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:  # a comma inside a TSV value, quoted in a CSV
        frame.to_csv(path, index=False, sep="\t" if suffix.startswith(".tsv") else ",")
    kind = table_kind(path)
    assert kind is not None
    assert _rows(read_frame(path, kind)) == _rows(frame)
    version = local_ws.log_dataset(path, "customers")
    assert version.storage == "reference" and version.num_rows == 3
    assert [c["name"] for c in version.schema] == ["age", "plan"]
    assert version.profile["columns"]["age"]["max"] == 45
    assert version.profile["columns"]["plan"]["nulls"] == 1
    assert _rows(local_ws.load_dataset(version.ref)) == _rows(frame)


def test_data_validate_reads_a_gzipped_tsv_and_refuses_a_spreadsheet(
    local_ws: Workspace, tmp_path: Path, exe: str
) -> None:
    frame = pd.DataFrame({"age": [31, 45, 27, 50], "plan": ["basic", "pro", "basic", "pro"]})
    local_ws.log_dataset(frame, "customers")
    env = {**os.environ, "MODELPILOT_HOME": str(local_ws.settings.home)}
    env.pop("MODELPILOT_STORE_URI", None)
    good = tmp_path / "new.tsv.gz"
    frame.to_csv(good, index=False, sep="\t")
    done = subprocess.run(
        [exe, "data", "validate", "customers", str(good)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rules passed on 4 rows" in done.stdout
    bad = tmp_path / "new.xlsx"
    bad.write_bytes(b"PK")
    done = subprocess.run(
        [exe, "data", "validate", "customers", str(bad)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "new.xlsx is not a table file" in done.stderr and ACCEPTED in done.stderr

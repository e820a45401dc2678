"""The table files modelpilot reads: Parquet, and CSV or TSV text, plain or gzip-compressed.

One place decides what a data file is, so every command that reads one (datasets, data
validate, monitor, score) accepts the same files and refuses the others the same way, naming
what it accepts. Public data often comes as ``adult.csv.gz`` or tab-separated; both read here
as pandas, pyarrow and DuckDB read them (each decompresses ``.gz`` itself).

>>> table_kind(Path("adult.csv.gz")), table_kind(Path("Sales.TSV")), table_kind(Path("x.xlsx"))
('csv', 'tsv', None)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modelpilot.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

TableKind = Literal["parquet", "csv", "tsv"]

ACCEPTED = ".parquet, .csv, .tsv, .csv.gz or .tsv.gz"

_SUFFIXES: dict[str, TableKind] = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
}


def table_kind(path: Path) -> TableKind | None:
    """What the file's name says it is (any case), or None for a file modelpilot cannot read."""
    name = path.name.lower()
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def delimiter(kind: TableKind) -> str:
    """The field separator of a text table."""
    return "\t" if kind == "tsv" else ","


def is_gzip(path: Path) -> bool:
    """A ``.gz`` file, in any case (DuckDB and Arrow detect only a lower-case ``.gz``)."""
    return path.name.lower().endswith(".gz")


def text_stream(path: Path) -> pa.NativeFile:
    """A CSV/TSV file as Arrow reads it, decompressed when it is a ``.gz``."""
    import pyarrow as pa

    return pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None)


def require_table(path: Path, what: str, field: str) -> TableKind:
    """The kind of an existing table file, or InvalidInput saying which it is not.

    ``what`` names the file in the message ("The data file"), ``field`` is the argument
    that gave it (``--reference``, ``data``).
    """
    kind = table_kind(path)
    if kind is None:
        raise InvalidInput(f"{what} {path} is not a table file: use {ACCEPTED}.", field=field)
    if not path.is_file():
        raise InvalidInput(f"{what} {path} does not exist (or is not a file).", field=field)
    return kind


def read_frame(path: Path, kind: TableKind) -> pd.DataFrame:
    """The whole file as a DataFrame, read as pandas reads it (a model trained on a frame
    pandas read sees the same values when the same file comes back)."""
    import pandas as pd

    if kind == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=delimiter(kind))

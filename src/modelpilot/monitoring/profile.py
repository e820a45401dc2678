"""Reference profiles: what drift detection keeps of the reference data, fitted once.

A profile holds, per column, the exact empirical CDF (numeric columns with at most
``max_points`` distinct values), a sketch of it at ``max_points`` evenly spaced ranks
(larger numeric columns; CDF error below ``1 / max_points``), or category counts. Every drift
method is fitted from it in microseconds, so one profile scores any number of windows without
touching the reference data again, and it round-trips through JSON for storage.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> profile = fit_profile(df)
>>> profile.kinds()
{'age': 'numeric', 'plan': 'categorical'}
>>> ReferenceProfile.from_json(profile.to_json()).kinds() == profile.kinds()
True
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from modelpilot.errors import InvalidInput, shown
from modelpilot.monitoring.drift.base import ColumnKind
from modelpilot.monitoring.drift.sample import (
    DEFAULT_MAX_POINTS,
    CategoricalCounts,
    NumericSummary,
)

FORMAT = "modelpilot.reference_profile"
SCHEMA_VERSION = 1
ColumnSummary = NumericSummary | CategoricalCounts
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ReferenceProfile:
    """Per-column reference summaries, in column order."""

    columns: dict[str, ColumnSummary]
    n_rows: int
    max_points: int = DEFAULT_MAX_POINTS

    def kinds(self) -> dict[str, ColumnKind]:
        """Each column's kind."""
        return {name: kind_of(summary) for name, summary in self.columns.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (numeric arrays as base64, exact to the bit)."""
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "n_rows": self.n_rows,
            "max_points": self.max_points,
            "columns": {name: s.to_dict() for name, s in self.columns.items()},
        }

    def to_json(self) -> str:
        """The profile as a JSON document."""
        return json.dumps(self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Write the JSON to ``path`` atomically (temporary file, then rename)."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"Reference profile is not valid JSON ({exc.msg} at position {exc.pos}). "
                "Pass the text written by ReferenceProfile.to_json() or save()."
            ) from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Inverse of :meth:`to_dict`; refuses other formats and newer schema versions."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise InvalidInput(
                f"Not a reference profile: expected format {FORMAT!r}, got {shown(got)}. "
                "Pass the output of ReferenceProfile.to_dict()."
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InvalidInput(
                f"Reference profile schema_version {shown(version)} is not supported; this "
                f"modelpilot reads version {SCHEMA_VERSION}. Refit the profile with fit_profile()."
            )
        columns: dict[str, ColumnSummary] = {}
        for name, column in data["columns"].items():
            if column.get("kind") == "numeric":
                columns[name] = NumericSummary.from_dict(column)
            else:
                columns[name] = CategoricalCounts.from_dict(column)
        return cls(columns, int(data["n_rows"]), int(data["max_points"]))


def fit_profile(
    reference: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    max_points: int = DEFAULT_MAX_POINTS,
    n_jobs: int | None = None,
) -> ReferenceProfile:
    """Summarise the reference once, in parallel over columns, for drift detection.

    Columns are numeric when their dtype is (bool excepted) and categorical otherwise;
    ``categorical`` forces columns to be treated as categories (codes, small integer sets).

    >>> import pandas as pd
    >>> fit_profile(pd.DataFrame({"x": [1.0, 2.0, None]})).columns["x"].n_null
    1
    """
    frame = require_frame(reference, "reference")
    names = list(frame.columns) if columns is None else list(columns)
    require_columns(frame, names, "reference data")
    forced = set(categorical)
    unknown = sorted(forced - set(names))
    if unknown:
        raise InvalidInput(
            f"categorical names {shown(unknown)} that are not among the profiled columns "
            f"{shown(names)}. Drop them or add them to columns=.",
            field="categorical",
        )

    def summarise(name: str) -> ColumnSummary:
        series = frame[name]
        untested = "" if name in forced else untested_kind(series)
        if untested:
            return CategoricalCounts({}, int(series.isna().sum()), untested=untested)
        if name in forced or infer_kind(series) == "categorical":
            return CategoricalCounts.from_values(series)
        return NumericSummary.from_values(
            series, max_points=max_points, where=f"reference column {name!r}"
        )

    summaries = parallel_map(summarise, names, n_jobs)
    return ReferenceProfile(dict(zip(names, summaries, strict=True)), len(frame), max_points)


# ISO 8601 dates and times as text (a CSV's date column): 2026-11-30, 2026-11-30T12:00:05Z
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
_TIMESTAMP_PROBE = 1_000  # distinct values looked at to call a text column dates
# How many distinct values prove a column holds identifiers. Integers: 100 random values
# packed in a range ten times their count are all distinct with probability exp(-100 / 20),
# under 1 %, so all-distinct there means keys. Text: a code of thousands of values drawn 100
# times is often all distinct; at 1,000 rows it takes about a million equally likely values.
MIN_IDENTIFIER_INTEGERS = 100
MIN_IDENTIFIER_TEXTS = 1_000
IDENTIFIER_SPAN = 10  # integer ids fill at most this many times their count of the range


def untested_kind(series: pd.Series) -> str:
    """Why a reference column is not tested for drift: ``"dates"``, ``"identifier"``, or
    ``""`` (it is tested).

    >>> untested_kind(pd.Series(range(5_000))), untested_kind(pd.Series([1.5, 2.5]))
    ('identifier', '')
    """
    if is_timestamp(series):
        return "dates"
    return "identifier" if is_identifier(series) else ""


def is_identifier(series: pd.Series) -> bool:
    """Whether a column looks like row identifiers: all values distinct, and either at least
    1,000 texts (ids, free text) or at least 100 integers packed into a range at most ten
    times their count (auto-increment keys, with gaps).

    Next month's ids are all new, or all larger: tested, such a column drifts in every window.
    Integers spread thinly over a wide range (amounts in cents, hashed keys) are tested as
    numbers: their distribution means something.

    >>> is_identifier(pd.Series(range(10_000, 12_000)))
    True
    >>> is_identifier(pd.Series(range(0, 2_000_000, 1_000)))  # all distinct, spread out
    False
    """
    values = series.dropna()
    if len(values) < MIN_IDENTIFIER_INTEGERS or pd.api.types.is_bool_dtype(values.dtype):
        return False
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
            return False
        span = float(numbers.max() - numbers.min()) + 1
        return span <= IDENTIFIER_SPAN * len(numbers) and bool(values.is_unique)
    return len(values) >= MIN_IDENTIFIER_TEXTS and bool(values.astype(str).is_unique)


def is_timestamp(series: pd.Series) -> bool:
    """Whether a column holds dates or times: a datetime dtype (Arrow's too), Python dates,
    or text that is all ISO 8601 dates (how a CSV's date column reads).

    Such a column is not tested for drift: its values move on with the calendar, so every
    window is "new", and it would fire on every window of perfectly stable data. Features
    derived from it (hour of day, weekday, age of an account) are what to monitor.

    >>> is_timestamp(pd.Series(["2026-11-30", "2026-12-01 08:00"])), is_timestamp(pd.Series(["a"]))
    (True, False)
    """
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return True
    if isinstance(dtype, pd.ArrowDtype):
        arrow = dtype.pyarrow_dtype
        return bool(pa.types.is_timestamp(arrow) or pa.types.is_date(arrow))
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return False
    values = series.dropna()
    values = values.drop_duplicates().head(_TIMESTAMP_PROBE) if len(values) else values
    if values.empty:
        return False
    if all(isinstance(v, datetime.date) for v in values):
        return True
    return all(isinstance(v, str) and _ISO_TIME.fullmatch(v) for v in values)


def infer_kind(series: pd.Series) -> ColumnKind:
    """``numeric`` for numeric dtypes other than bool, ``categorical`` for everything else.

    >>> infer_kind(pd.Series([True, False])), infer_kind(pd.Series([1.5]))
    ('categorical', 'numeric')
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    return "numeric"


def kind_of(summary: ColumnSummary) -> ColumnKind:
    """The column kind a summary describes."""
    return "numeric" if isinstance(summary, NumericSummary) else "categorical"


def require_frame(data: Any, role: str) -> pd.DataFrame:
    """``data`` if it is a non-empty DataFrame, else a clear InvalidInput."""
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"The {role} data must be a pandas DataFrame; got {type(data).__name__}. "
            "Wrap it with pandas.DataFrame(...).",
            field=role,
        )
    if len(data) == 0:
        raise InvalidInput(
            f"The {role} data has no rows; expected at least 1. Skip empty windows, or widen "
            "the window so it contains data.",
            field=role,
        )
    return data


def require_columns(frame: pd.DataFrame, names: Sequence[str], where: str) -> None:
    """InvalidInput naming the missing columns and the ones that exist."""
    present = set(frame.columns)
    missing = [name for name in names if name not in present]
    if missing:
        raise InvalidInput(
            f"Column(s) {shown(missing)} missing from the {where}; it has "
            f"{shown(list(frame.columns))}. Add the columns, or pass columns=[...] to check "
            "only the ones both sides have.",
            field=str(missing[0]),
        )


def parallel_map(fn: Callable[[T], R], items: Sequence[T], n_jobs: int | None) -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool (NumPy sorting releases the GIL).

    >>> parallel_map(lambda x: x * 2, [1, 2, 3], n_jobs=2)
    [2, 4, 6]
    """
    workers = min(n_jobs or os.cpu_count() or 1, max(len(items), 1))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mp-drift") as pool:
        return list(pool.map(fn, items))

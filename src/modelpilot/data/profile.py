"""Schema and profile of a table: what a dataset version looks like, computed on log.

The profile (counts, nulls, min/max, mean/std, quantiles, top categories) is small JSON kept
with the version, so a reader can see the data's shape without loading it, and monitoring
can use it as a first reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TOP_CATEGORIES = 20


def infer_schema(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Column names, dtypes and whether nulls occur.

    >>> infer_schema(pd.DataFrame({"a": [1, 2], "b": ["x", None]}))
    [{'name': 'a', 'dtype': 'int64', 'nullable': False}, {'name': 'b', 'dtype': 'object', 'nullable': True}]
    """  # noqa: E501
    return [
        {
            "name": str(col),
            "dtype": str(frame[col].dtype),
            "nullable": bool(frame[col].isna().any()),
        }
        for col in frame.columns
    ]


def compute_profile(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-column statistics plus the row count.

    >>> p = compute_profile(pd.DataFrame({"x": [1.0, 2.0, None]}))
    >>> p["num_rows"], p["columns"]["x"]["nulls"], p["columns"]["x"]["max"]
    (3, 1, 2.0)
    """
    return {
        "num_rows": len(frame),
        "columns": {str(col): _column_profile(frame[col]) for col in frame.columns},
    }


def _column_profile(series: pd.Series) -> dict[str, Any]:
    nulls = int(series.isna().sum())
    profile: dict[str, Any] = {
        "dtype": str(series.dtype),
        "count": len(series) - nulls,
        "nulls": nulls,
    }
    present = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        profile["kind"] = "categorical"
        profile["top"] = _top(present.astype(str))
    elif pd.api.types.is_numeric_dtype(series):
        profile["kind"] = "numeric"
        values = present.to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            with np.errstate(over="ignore", invalid="ignore"):  # huge values overflow sums
                qs = np.quantile(values, QUANTILES)
                mean = float(values.mean())
                std = float(values.std(ddof=1)) if values.size > 1 else 0.0
            profile.update(
                min=float(values.min()),
                max=float(values.max()),
                mean=mean if np.isfinite(mean) else None,
                std=std if np.isfinite(std) else None,
                quantiles={str(q): float(v) for q, v in zip(QUANTILES, qs, strict=True)},
            )
    elif pd.api.types.is_datetime64_any_dtype(series):
        profile["kind"] = "datetime"
        if len(present):
            profile.update(min=str(present.min()), max=str(present.max()))
    else:
        profile["kind"] = "categorical"
        profile["top"] = _top(present.astype(str))
        profile["unique"] = int(present.astype(str).nunique())
    return profile


def _top(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts().head(TOP_CATEGORIES)
    return {str(k): int(v) for k, v in counts.items()}

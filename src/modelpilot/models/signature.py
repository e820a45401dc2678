"""Model signatures: the input columns (or tensor) a model takes and what it returns.

Inferred from the input example at log time, stored with the version, and used by every
entry point (SDK ``predict``, the data plane) to turn caller data into exactly what the model
was trained on, or to say precisely what is wrong: which column, which row, what was expected
and what arrived. Validation is vectorised: one pass per column, never a Python loop per row.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown

DType = Literal["float64", "float32", "int64", "int32", "bool", "string", "datetime"]
_NUMERIC: tuple[str, ...] = ("float64", "float32", "int64", "int32")
NUMERIC_DTYPES = _NUMERIC  # the dtypes a domain keeps a range for
MAX_CATEGORIES = 1000  # a string column with more distinct values is free text: no set kept
# Rows without a missing value before "this column never has one" is trusted (and flagged).
MIN_ROWS_FOR_NO_NULLS = 100
_V = TypeVar("_V")


@dataclass(frozen=True)
class ColumnSpec:
    """One named input column. ``nullable`` allows missing values (NaN/None)."""

    name: str
    dtype: DType
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}


class ColumnFacts(Protocol):
    """What a dataset says about one column (``modelpilot.data.column_stats.ColumnStats``)."""

    @property
    def rows(self) -> int: ...
    @property
    def nulls(self) -> int: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def values(self) -> frozenset[str] | None: ...


@dataclass(frozen=True)
class InputDomain:
    """The values the model was trained on, per input column, to flag requests far outside.

    Recorded from the training data when ``log_model`` links a dataset (the ``reference``
    datasets if any, else the ``training`` ones), else from the input example: min/max per
    numeric column, the set of values per string column with at most MAX_CATEGORIES of them,
    and ``never_null``: the columns without a missing value in at least MIN_ROWS_FOR_NO_NULLS
    rows (fewer rows prove nothing). The data plane answers rows outside anyway and marks them
    in the prediction log. A number is *far outside* when it lies beyond the recorded min/max
    by more than the recorded range (``max - min``; for a constant column, by more than
    ``max(|value|, 1)``): data covering ages 20 to 60 accepts -20 to 100. A string is outside
    when it is not in the recorded set; a missing value when its column is in ``never_null``.

    >>> frame = pd.DataFrame({"age": [20, 60], "plan": ["basic", "pro"]})
    >>> domain = infer_signature(frame).domain
    >>> domain.ranges["age"], sorted(domain.categories["plan"]), domain.never_null
    ((20.0, 60.0), ['basic', 'pro'], frozenset())
    >>> positions, low, high = domain.numeric_limits
    >>> positions, low.tolist(), high.tolist()
    ((0,), [-20.0], [100.0])
    """

    columns: tuple[str, ...]  # every input column, in signature order
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    categories: Mapping[str, frozenset[str]] = field(default_factory=dict)
    never_null: frozenset[str] = frozenset()
    rows: int = 0  # rows it was recorded from (0 in domains stored before this was kept)
    source: str = "input example"  # or the datasets' refs, ``train@3f2a…``

    @functools.cached_property
    def numeric_limits(self) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
        """(positions in the row, lowest accepted, highest accepted) of the ranged columns."""
        positions, low, high = [], [], []
        for i, name in enumerate(self.columns):
            if name in self.ranges:
                lo, hi = self.ranges[name]
                margin = hi - lo if hi > lo else max(abs(lo), 1.0)
                positions.append(i)
                low.append(lo - margin)
                high.append(hi + margin)
        return tuple(positions), np.array(low), np.array(high)

    @functools.cached_property
    def category_positions(self) -> tuple[tuple[int, frozenset[str]], ...]:
        """(position in the row, accepted values) of the columns with a category set."""
        return tuple(
            (i, self.categories[name])
            for i, name in enumerate(self.columns)
            if name in self.categories
        )

    @functools.cached_property
    def null_positions(self) -> tuple[int, ...]:
        """Positions in the row of the ``never_null`` columns."""
        return tuple(i for i, name in enumerate(self.columns) if name in self.never_null)

    @functools.cached_property
    def null_plan(self) -> tuple[bool, tuple[int, ...]]:
        """Whether a range check can flag NaN too (every ranged column is ``never_null``: the
        usual case, which then costs no extra pass), and the null checks left to do apart."""
        ranged = set(self.numeric_limits[0])
        if ranged and ranged <= set(self.null_positions):
            return True, tuple(p for p in self.null_positions if p not in ranged)
        return False, self.null_positions

    def to_dict(self) -> dict[str, Any]:
        """JSON form (columns come from the signature, so they are not repeated)."""
        return {
            "ranges": {name: [lo, hi] for name, (lo, hi) in self.ranges.items()},
            "categories": {name: sorted(values) for name, values in self.categories.items()},
            "never_null": sorted(self.never_null),
            "rows": self.rows,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], columns: Sequence[str]) -> InputDomain:
        """Inverse of :meth:`to_dict`; entries for columns the signature lacks are dropped.
        Domains stored before ``never_null``/``rows``/``source`` were kept load without them."""
        ranges = data.get("ranges") or {}
        categories = data.get("categories") or {}
        never_null = set(data.get("never_null") or ())
        return cls(
            tuple(columns),
            {n: (float(ranges[n][0]), float(ranges[n][1])) for n in columns if n in ranges},
            {n: frozenset(map(str, categories[n])) for n in columns if n in categories},
            frozenset(n for n in columns if n in never_null),
            int(data.get("rows") or 0),
            str(data.get("source") or "input example"),
        )

    @classmethod
    def infer(cls, frame: pd.DataFrame, specs: Sequence[ColumnSpec]) -> InputDomain:
        """Ranges, category sets and columns without nulls of an input example (one
        vectorised pass per column)."""
        ranges: dict[str, tuple[float, float]] = {}
        categories: dict[str, frozenset[str]] = {}
        never_null: set[str] = set()
        for spec in specs:
            values = frame[spec.name]
            if len(frame) >= MIN_ROWS_FOR_NO_NULLS and not values.isna().any():
                never_null.add(spec.name)
            if spec.dtype in _NUMERIC:
                finite = pd.to_numeric(values, errors="coerce").astype("float64")
                finite = finite[np.isfinite(finite)]
                if len(finite):
                    ranges[spec.name] = (float(finite.min()), float(finite.max()))
            elif spec.dtype == "string":
                seen = values.dropna().astype(str).unique()
                if len(seen) <= MAX_CATEGORIES:
                    categories[spec.name] = frozenset(seen.tolist())
        columns = tuple(s.name for s in specs)
        return cls(columns, ranges, categories, frozenset(never_null), len(frame))

    @classmethod
    def from_facts(
        cls,
        specs: Sequence[ColumnSpec],
        facts: Mapping[str, ColumnFacts],
        source: str,
        fallback: InputDomain | None = None,
    ) -> InputDomain:
        """The domain a dataset's per-column facts give (see ``data.column_stats``); columns
        the dataset lacks keep what ``fallback`` (the input example's domain) says.

        >>> from modelpilot.data.column_stats import ColumnStats
        >>> specs = [ColumnSpec("age", "int64"), ColumnSpec("plan", "string", nullable=True)]
        >>> facts = {"age": ColumnStats(500, 0, 18.0, 90.0)}
        >>> example = InputDomain(("age", "plan"), {"age": (30.0, 40.0)}, {"plan": frozenset("ab")})
        >>> domain = InputDomain.from_facts(specs, facts, "train@3f2a", example)
        >>> domain.ranges["age"], sorted(domain.categories["plan"]), sorted(domain.never_null)
        ((18.0, 90.0), ['a', 'b'], ['age'])
        """
        ranges: dict[str, tuple[float, float]] = {}
        categories: dict[str, frozenset[str]] = {}
        never_null: set[str] = set()
        for spec in specs:
            fact = facts.get(spec.name)
            if fact is None:
                if fallback is not None:
                    ranges.update(_entry(fallback.ranges, spec.name))
                    categories.update(_entry(fallback.categories, spec.name))
                continue
            if fact.rows >= MIN_ROWS_FOR_NO_NULLS and fact.nulls == 0:
                never_null.add(spec.name)
            if spec.dtype in _NUMERIC and fact.low is not None and fact.high is not None:
                ranges[spec.name] = (fact.low, fact.high)
            elif spec.dtype == "string" and fact.values is not None:
                categories[spec.name] = fact.values
        rows = max((f.rows for f in facts.values()), default=0)
        columns = tuple(s.name for s in specs)
        return cls(columns, ranges, categories, frozenset(never_null), rows, source)

    def checking_nulls_of(self, nullable: Collection[str]) -> InputDomain:
        """This domain with ``never_null`` kept to ``nullable`` columns: validation already
        refuses a missing value in the others, so checking them again is wasted work."""
        return replace(self, never_null=self.never_null & frozenset(nullable))


def _entry(mapping: Mapping[str, _V], name: str) -> dict[str, _V]:
    return {name: mapping[name]} if name in mapping else {}


@dataclass(frozen=True)
class Signature:
    """What a model accepts and returns.

    ``input_kind`` is ``columns`` (a table: DataFrame, records, column dict) or ``tensor``
    (an n-d numeric array whose first axis is the batch).

    >>> sig = infer_signature(pd.DataFrame({"age": [31, 40], "income": [1.5, 2.0]}))
    >>> [c.dtype for c in sig.inputs]
    ['int64', 'float64']
    >>> sig.coerce([{"age": 30, "income": 1}]).dtypes.tolist()
    [dtype('int64'), dtype('float64')]
    """

    input_kind: Literal["columns", "tensor"]
    inputs: tuple[ColumnSpec, ...] = ()
    tensor_dtype: DType | None = None
    tensor_shape: tuple[int, ...] = ()
    output_dtype: str | None = None
    classes: tuple[Any, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # What the input example covered (None for tensors and for signatures stored before it
    # was recorded); not part of equality: it does not change what a model accepts.
    domain: InputDomain | None = field(default=None, compare=False)

    @property
    def column_names(self) -> list[str]:
        """Input column names in model order."""
        return [c.name for c in self.inputs]

    @property
    def is_classifier(self) -> bool:
        """True when the model exposes class labels (and so probabilities)."""
        return self.classes is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored with the model version (``domain`` only when there is one)."""
        data: dict[str, Any] = {
            "input_kind": self.input_kind,
            "inputs": [c.to_dict() for c in self.inputs],
            "tensor_dtype": self.tensor_dtype,
            "tensor_shape": list(self.tensor_shape),
            "output_dtype": self.output_dtype,
            "classes": None if self.classes is None else [_jsonable(c) for c in self.classes],
        }
        if self.domain is not None:
            data["domain"] = self.domain.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Inverse of :meth:`to_dict`."""
        classes = data.get("classes")
        inputs = tuple(
            ColumnSpec(c["name"], c["dtype"], bool(c.get("nullable")))
            for c in data.get("inputs", [])
        )
        domain = data.get("domain")  # absent in signatures stored by earlier versions
        return cls(
            input_kind=data["input_kind"],
            inputs=inputs,
            tensor_dtype=data.get("tensor_dtype"),
            tensor_shape=tuple(data.get("tensor_shape") or ()),
            output_dtype=data.get("output_dtype"),
            classes=None if classes is None else tuple(classes),
            domain=None
            if domain is None
            else InputDomain.from_dict(domain, [c.name for c in inputs]),
        )

    def coerce(self, data: object, *, where: str = "input") -> Any:
        """Turn caller data into the model's input (DataFrame or ndarray), or raise InvalidInput.

        Accepts a DataFrame, a list of records, a dict of columns, or a 2-d array whose
        columns are in signature order.
        """
        if self.input_kind == "tensor":
            return self._coerce_tensor(data, where)
        frame = to_frame(data, self.column_names, where=where)
        missing = [n for n in self.column_names if n not in frame.columns]
        extra = [str(c) for c in frame.columns if c not in set(self.column_names)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unexpected column(s) {', '.join(map(repr, extra[:10]))}")
            raise InvalidInput(
                f"{where.capitalize()}: {'; '.join(parts)}. Expected exactly: "
                f"{', '.join(self.column_names)}.",
                field=(missing or extra)[0],
            )
        if len(frame) == 0:
            raise InvalidInput(f"{where.capitalize()} has no rows; send at least one.", field=None)
        columns = {spec.name: coerce_column(frame[spec.name], spec, where) for spec in self.inputs}
        return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))

    def _coerce_tensor(self, data: object, where: str) -> np.ndarray:
        try:
            array = np.asarray(data.to_numpy() if isinstance(data, pd.DataFrame) else data)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{where.capitalize()} is not a rectangular array: {exc}.") from exc
        expected = self.tensor_shape[1:]
        if array.ndim == len(expected):  # a single example without the batch axis
            array = array[np.newaxis, ...]
        if array.shape[1:] != expected or array.shape[0] == 0:
            raise InvalidInput(
                f"{where.capitalize()} has shape {list(array.shape)}; expected "
                f"[-1, {', '.join(map(str, expected))}] (any number of rows).",
                field="shape",
            )
        dtype = np.dtype(self.tensor_dtype or "float64")
        if array.dtype.kind not in "biuf":
            raise InvalidInput(
                f"{where.capitalize()} must be numeric ({dtype}); got values of type "
                f"{array.dtype}.",
                field="datatype",
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            index = np.argwhere(~np.isfinite(array))[0].tolist()
            raise InvalidInput(
                f"{where.capitalize()} has a non-finite value at index {index}; expected "
                f"finite {dtype}.",
                field="data",
            )
        return array.astype(dtype, copy=False)


def to_frame(data: object, columns: Sequence[str], *, where: str = "input") -> pd.DataFrame:
    """A DataFrame from records, a column dict, a DataFrame, or a positional 2-d array."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        lengths = {
            len(v) if isinstance(v, (list, tuple, np.ndarray)) else -1 for v in data.values()
        }
        if -1 in lengths or len(lengths) > 1:
            raise InvalidInput(
                f"{where.capitalize()} as columns must map each column name to a list of equal "
                'length, e.g. {"age": [31, 40], "income": [1.5, 2.0]}.',
                field="columns",
            )
        return pd.DataFrame(dict(data))
    if isinstance(data, np.ndarray) or (
        isinstance(data, list) and data and isinstance(data[0], (list, tuple))
    ):
        array = np.asarray(data, dtype=object) if isinstance(data, list) else data
        if array.ndim != 2 or array.shape[1] != len(columns):
            raise InvalidInput(
                f"{where.capitalize()} as an array must have shape [rows, {len(columns)}] with "
                f"columns in the order {', '.join(columns)}; got shape {list(array.shape)}.",
                field="shape",
            )
        return pd.DataFrame(array, columns=list(columns))
    if isinstance(data, list):
        if not all(isinstance(r, Mapping) for r in data):
            bad = next(i for i, r in enumerate(data) if not isinstance(r, Mapping))
            raise InvalidInput(
                f"{where.capitalize()} record {bad} is {shown(data[bad])}; expected an object "
                "mapping column names to values.",
                field=f"[{bad}]",
            )
        return pd.DataFrame.from_records(data)
    raise InvalidInput(
        f"{where.capitalize()} must be a DataFrame, a list of records, a dict of columns or a "
        f"2-d array; got {type(data).__name__}.",
        field=None,
    )


def coerce_column(
    series: pd.Series, spec: ColumnSpec, where: str = "input"
) -> np.ndarray | pd.Series:
    """Cast one column to its spec's dtype, naming the first bad row when it cannot."""
    if spec.dtype in _NUMERIC:
        return _coerce_numeric(series, spec, where)
    if spec.dtype == "bool":
        if series.dtype == bool:
            return series.to_numpy()
        ok = series.map(lambda v: isinstance(v, (bool, np.bool_)))
        if not ok.all():
            _fail(series, ok, spec, where, "true or false")
        return series.to_numpy(dtype=bool)
    if spec.dtype == "datetime":
        converted = pd.to_datetime(series, errors="coerce", utc=True)
        bad = converted.isna() & series.notna()
        if bad.any():
            _fail(series, ~bad, spec, where, "an ISO-8601 date/time")
        return converted
    # string columns: anything printable goes, but a missing value only where allowed
    if not spec.nullable and series.isna().any():
        # the one way a text column becomes nullable is an example with a missing value
        hint = "no missing values: the version's input example had none in this column"
        _fail(series, series.notna(), spec, where, f"a string ({hint})")
    return series.astype(object).where(series.isna(), series.astype(str))


def _coerce_numeric(series: pd.Series, spec: ColumnSpec, where: str) -> np.ndarray:
    if series.dtype.kind in "biuf":
        values = series.to_numpy()
    else:
        ok = series.map(
            lambda v: (
                v is None or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
            )
        )
        if not ok.all():
            _fail(series, ok, spec, where, f"a number ({spec.dtype})")
        values = pd.to_numeric(series).to_numpy(dtype=np.float64)
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            missing = np.isnan(values)
            allowed = finite | (missing if spec.nullable else np.zeros_like(missing))
            if not allowed.all():
                what = f"a finite {spec.dtype}" + ("" if spec.nullable else " (no missing values)")
                _fail(series, pd.Series(allowed, index=series.index), spec, where, what)
        is_int = spec.dtype.startswith("int")
        if is_int and not (finite.all() and (values == np.round(values)).all()):
            ok = pd.Series(
                finite & (values == np.round(np.where(finite, values, 0))), index=series.index
            )
            _fail(series, ok, spec, where, f"a whole number ({spec.dtype})")
    return values.astype(spec.dtype, copy=False)


def _fail(series: pd.Series, ok: pd.Series, spec: ColumnSpec, where: str, expected: str) -> None:
    position = int(np.flatnonzero(~ok.to_numpy(dtype=bool))[0])
    value = series.iloc[position]
    raise InvalidInput(
        f"{where.capitalize()} column {spec.name!r} (row {position}): expected {expected}; "
        f"got {shown(value)}.",
        field=spec.name,
    )


def infer_signature(
    example: object, output: object = None, classes: Sequence[Any] | None = None
) -> Signature:
    """Infer a signature from an input example (and optionally the model's output on it).

    >>> infer_signature(np.zeros((3, 4), dtype=np.float32)).tensor_shape
    (-1, 4)
    """
    output_dtype = None if output is None else str(np.asarray(output).dtype)
    class_tuple = None if classes is None else tuple(_jsonable(c) for c in classes)
    if isinstance(example, np.ndarray):
        if example.ndim < 2 or example.dtype.kind not in "biuf":
            raise InvalidInput(
                f"Input example array must be numeric with a batch axis (shape [rows, ...]); got "
                f"shape {list(example.shape)} of {example.dtype}.",
                field="input_example",
            )
        return Signature(
            "tensor",
            tensor_dtype=_dtype_name(example.dtype),
            tensor_shape=(-1, *example.shape[1:]),
            output_dtype=output_dtype,
            classes=class_tuple,
        )
    frame = to_frame(example, [], where="input example")
    if len(frame) == 0:
        raise InvalidInput(
            "Input example has no rows; pass a few rows of real data.", field="input_example"
        )
    specs = tuple(
        ColumnSpec(str(col), _column_dtype(frame[col]), bool(frame[col].isna().any()))
        for col in frame.columns
    )
    domain = InputDomain.infer(frame.set_axis([s.name for s in specs], axis=1), specs)
    return Signature(
        "columns", inputs=specs, output_dtype=output_dtype, classes=class_tuple, domain=domain
    )


def _column_dtype(series: pd.Series) -> DType:
    """The signature's dtype of a column, pandas' own dtypes included: nullable ``Int64`` and
    ``Float64``, ``boolean``, Arrow-backed columns (``int64[pyarrow]``) and categories are
    read as the NumPy dtype of their values, a timezone-aware date/time as ``datetime``. A
    nullable integer column is ``float64``: scikit-learn reads its missing values as NaN,
    which an integer column cannot hold (the input checks still name a non-number).

    >>> _column_dtype(pd.Series([1, None], dtype="Int64")), _column_dtype(pd.Series(["a"]))
    ('float64', 'string')
    >>> _column_dtype(pd.Series(pd.to_datetime(["2026-01-01"], utc=True)))
    'datetime'
    """
    dtype: Any = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if not isinstance(dtype, np.dtype):
        numpy_dtype = getattr(dtype, "numpy_dtype", None)  # pandas' extension dtypes
        if not isinstance(numpy_dtype, np.dtype):
            return "string"
        if numpy_dtype.kind in "iu":
            return "float64"
        dtype = numpy_dtype
    kind = dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int32" if dtype.itemsize <= 4 and kind == "i" else "int64"
    if kind == "f":
        return "float32" if dtype.itemsize == 4 else "float64"
    if kind == "M":
        return "datetime"
    return "string"


def _dtype_name(dtype: np.dtype[Any]) -> DType:
    name = str(dtype)
    if name in ("float64", "float32", "int64", "int32", "bool"):
        return name  # type: ignore[return-value]
    return "float64" if dtype.kind == "f" else "int64"


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

"""Data risks of a dataset version: what could quietly make a model trained on it wrong.

Checked when a dataset is logged and kept in its profile (``profile["risks"]``), so the
dataset card shows them and validation rules can read them:

* **class balance** of the label column (when one is named and the task is classification);
* **likely label errors**: rows whose out-of-fold predicted probabilities (a cross-validated
  logistic regression) disagree with their label, found by cleanlab's confident learning
  (Northcutt, Jiang & Chuang, "Confident Learning", JAIR 2021). Opt-in (it fits five models);
* **outliers**: rows with a numeric value whose modified z-score ``0.6745 (x - median) / MAD``
  exceeds 3.5 (Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993);
* **duplicates** inside the dataset and **leakage**: rows whose feature values also occur in
  another dataset (the evaluation data), by exact row hashes;
* **personal data** in columns, found by the detector the caller passes (the SDK passes the
  one behind the prediction log's PII policy).

Everything but leakage runs on at most ``max_rows`` seeded rows, so logging a large dataset
stays cheap; leakage hashes every row (a hash per row is cheaper than a sample's false
negatives).

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.5, 1.5, 100.0], "y": [0, 1, 0, 1, 0, 0]})
>>> risks = assess_risks(frame, label="y")
>>> risks.outliers["rows"], risks.class_balance["minority_share"]
([5], 0.333333)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown

MAX_ROWS = 10_000  # rows sampled for the per-row checks (label issues, outliers, PII values)
PII_ROWS = 1_000  # values per text column the PII detector reads
OUTLIER_Z = 3.5  # Iglewicz & Hoaglin's cut-off for the modified z-score
MAX_CLASSES = 20  # a numeric label with more distinct values is taken for regression
EXAMPLES = 10
_FOLDS = 5
_MAX_CATEGORIES = 50  # text columns with more distinct values (ids, free text) are not features

Task = Literal["classification", "regression"]


class PiiFindingLike(Protocol):
    """What a PII detector reports per column (``modelpilot.models.pii.PiiFinding``)."""

    @property
    def column(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def found_by(self) -> str: ...


PiiDetector = Callable[[pd.DataFrame], Sequence[PiiFindingLike]]


@dataclass(frozen=True)
class DataRisks:
    """The risk findings of one dataset; :meth:`to_dict` is what the profile stores."""

    rows: int
    rows_checked: int
    label: str | None = None
    task: Task | None = None
    class_balance: dict[str, Any] | None = None
    label_issues: dict[str, Any] | None = None
    outliers: dict[str, Any] = field(default_factory=dict)
    duplicates: dict[str, Any] = field(default_factory=dict)
    leakage: dict[str, Any] | None = None
    pii: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (stored as ``profile["risks"]``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataRisks:
        """Back from :meth:`to_dict` (unknown keys from newer versions are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def summary(self) -> list[str]:
        """One sentence per finding, for cards and the CLI."""
        out = []
        if self.class_balance is not None:
            b = self.class_balance
            out.append(
                f"class balance of {self.label!r}: minority class {b['minority_class']!r} is "
                f"{b['minority_share']:.1%} of rows (imbalance ratio {b['imbalance_ratio']:g})"
            )
        if self.label_issues is not None:
            li = self.label_issues
            out.append(
                f"likely label errors: {li['count']:,} of {li['rows_checked']:,} rows "
                f"({li['share']:.1%})"
            )
        if self.outliers:
            out.append(
                f"outliers (modified z > {OUTLIER_Z:g}): {self.outliers['count']:,} rows "
                f"({self.outliers['share']:.1%})"
            )
        if self.duplicates.get("count"):
            out.append(f"duplicate rows inside the dataset: {self.duplicates['count']:,}")
        if self.leakage is not None:
            lk = self.leakage
            out.append(f"leakage: {lk['count']:,} rows ({lk['share']:.1%}) also in {lk['against']}")
        if self.pii:
            cols = ", ".join(f"{p['column']} ({p['kind']})" for p in self.pii)
            out.append(f"personal data in {len(self.pii)} column(s): {cols}")
        return out


def assess_risks(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    against: pd.DataFrame | None = None,
    against_name: str = "the other dataset",
    label_issues: bool = False,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    pii_detector: PiiDetector | None = None,
) -> DataRisks:
    """The risks of ``frame``; ``label`` names the label column, ``against`` the data it
    must not share rows with (leakage), ``label_issues=True`` runs the cleanlab check.

    Use it before training or at ``mp.log_dataset`` (which stores the result on the version).
    """
    _check_options(frame, label, against, max_rows, label_issues)
    rows = _sample_rows(len(frame), max_rows, seed)
    sample = frame.iloc[rows]
    features = [c for c in frame.columns if c != label]
    notes: list[str] = []
    task = None if label is None else infer_task(frame[label])
    balance = None if label is None or task != "classification" else class_balance(frame[label])
    issues = None
    if label_issues and label is not None:
        issues = _label_issues(sample, label, task, rows, seed, notes)
    return DataRisks(
        rows=len(frame),
        rows_checked=len(rows),
        label=label,
        task=task,
        class_balance=balance,
        label_issues=issues,
        outliers=find_outliers(sample[features], rows),
        duplicates=_duplicates(frame),
        leakage=None if against is None else find_leakage(frame, against, against_name, label),
        pii=_pii(frame, pii_detector, seed),
        notes=notes,
    )


def _check_options(
    frame: object,
    label: str | None,
    against: object,
    max_rows: int,
    label_issues: bool,
) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(
            f"Data risks need a pandas DataFrame; got {type(frame).__name__}.", field="data"
        )
    if label is not None and label not in frame.columns:
        raise InvalidInput(
            f"Label column {shown(label)} is not in the dataset; columns: "
            f"{shown(list(map(str, frame.columns)))}. Pass label= the label column's name.",
            field="label",
        )
    if label_issues and label is None:
        raise InvalidInput(
            "label_issues=True needs the label column: pass label='<column>'.", field="label"
        )
    if against is not None and not isinstance(against, pd.DataFrame):
        raise InvalidInput(
            f"Leakage is checked against a DataFrame; got {type(against).__name__}.",
            field="leakage_against",
        )
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidInput(
            f"max_rows must be a positive integer; got {shown(max_rows)}.", field="max_rows"
        )


def _sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 31]).choice(n, size=max_rows, replace=False))


def infer_task(y: pd.Series) -> Task:
    """Classification for text, booleans, categories and integers with few distinct values.

    >>> infer_task(pd.Series([0, 1, 1])), infer_task(pd.Series([0.5, 1.7, 2.2]))
    ('classification', 'regression')
    """
    present = y.dropna()
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = present.to_numpy(dtype=np.float64)
    integral = bool(np.all(np.mod(values, 1) == 0)) if values.size else True
    return "classification" if integral and present.nunique() <= MAX_CLASSES else "regression"


def class_balance(y: pd.Series) -> dict[str, Any]:
    """Counts per class, the minority class's share and the majority/minority ratio.

    >>> class_balance(pd.Series(["a", "a", "a", "b"]))["imbalance_ratio"]
    3.0
    """
    counts = y.dropna().astype(str).value_counts()
    if counts.empty:
        return {"counts": {}, "minority_class": None, "minority_share": 0.0, "imbalance_ratio": 0}
    total = int(counts.sum())
    return {
        "counts": {str(k): int(v) for k, v in counts.items()},
        "minority_class": str(counts.index[-1]),
        "minority_share": round(float(counts.iloc[-1]) / total, 6),
        "imbalance_ratio": round(float(counts.iloc[0]) / float(counts.iloc[-1]), 4),
    }


def modified_z(values: np.ndarray) -> np.ndarray:
    """``0.6745 (x - median) / MAD``; with a zero MAD, ``(x - median) / (1.2533 * mean
    absolute deviation)``; zeros when the column is constant. NaN stays NaN.

    >>> modified_z(np.array([1.0, 2.0, 3.0])).tolist()
    [-0.6745, 0.0, 0.6745]
    """
    median = np.nanmedian(values) if np.isfinite(values).any() else 0.0
    deviation = np.abs(values - median)
    mad = np.nanmedian(deviation) if np.isfinite(deviation).any() else 0.0
    if mad > 0:
        return np.asarray(0.6745 * (values - median) / mad)
    mean_ad = np.nanmean(deviation) if np.isfinite(deviation).any() else 0.0
    if mean_ad > 0:
        return np.asarray((values - median) / (1.253314 * mean_ad))
    return np.where(np.isnan(values), np.nan, 0.0)


def find_outliers(features: pd.DataFrame, rows: np.ndarray) -> dict[str, Any]:
    """Rows (numbered as in the whole dataset) with any numeric value beyond the cut-off."""
    worst = np.zeros(len(features))
    per_column: dict[str, int] = {}
    for column in features.columns:
        series = features[column]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        values = np.where(np.isfinite(values), values, np.nan)
        z = np.abs(modified_z(values))
        z = np.nan_to_num(z, nan=0.0)
        hits = int((z > OUTLIER_Z).sum())
        if hits:
            per_column[str(column)] = hits
        worst = np.maximum(worst, z)
    flagged = np.flatnonzero(worst > OUTLIER_Z)
    order = flagged[np.argsort(-worst[flagged], kind="stable")][:EXAMPLES]
    return {
        "method": f"modified z-score > {OUTLIER_Z:g} in any numeric column",
        "count": int(flagged.size),
        "share": round(flagged.size / max(len(features), 1), 6),
        "columns": per_column,
        "rows": sorted(int(rows[i]) for i in order),
    }


def row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One 64-bit hash per row over ``columns``; numbers compare to 12 significant digits and
    everything else as text, so ``1`` (int) and ``1.0`` (float) hash alike.

    >>> a = pd.DataFrame({"x": [1, 2]}); b = pd.DataFrame({"x": [2.0, 3.0]})
    >>> bool(row_hashes(a, ["x"])[1] == row_hashes(b, ["x"])[0])
    True
    """
    normal: dict[str, np.ndarray] = {}
    for column in columns:
        series = frame[column]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric:  # 12 significant digits: a CSV round trip may change the last bits
            normal[column] = np.char.mod(
                "%.12g", series.to_numpy(dtype=np.float64, na_value=np.nan)
            )
        else:
            normal[column] = series.astype(str).to_numpy()  # positions, whatever the index
    table = pd.DataFrame(normal, index=range(len(frame)))
    return pd.util.hash_pandas_object(table, index=False).to_numpy(dtype=np.uint64)


def find_leakage(
    frame: pd.DataFrame, other: pd.DataFrame, other_name: str, label: str | None = None
) -> dict[str, Any]:
    """Rows of ``frame`` whose values (the label left out) also occur in ``other``.

    >>> a = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    >>> b = pd.DataFrame({"x": [3, 4], "y": [1, 1]})
    >>> find_leakage(a, b, "test", "y")["examples"]
    [{'row': 2, 'other_row': 0}]
    """
    columns = [c for c in frame.columns if c in other.columns and c != label]
    if not columns:
        raise InvalidInput(
            f"Cannot check leakage against {other_name}: it shares no column with this "
            f"dataset (this: {shown(list(map(str, frame.columns)))}; "
            f"{other_name}: {shown(list(map(str, other.columns)))}).",
            field="leakage_against",
        )
    mine, theirs = row_hashes(frame, columns), row_hashes(other, columns)
    first_seen: dict[int, int] = {}
    for i, h in enumerate(theirs.tolist()):
        first_seen.setdefault(h, i)
    hits = np.flatnonzero(np.isin(mine, theirs))
    return {
        "against": other_name,
        "columns": [str(c) for c in columns],
        "count": int(hits.size),
        "share": round(hits.size / max(len(frame), 1), 6),
        "examples": [
            {"row": int(i), "other_row": first_seen[int(mine[i])]} for i in hits[:EXAMPLES]
        ],
    }


def _duplicates(frame: pd.DataFrame) -> dict[str, Any]:
    hashes = row_hashes(frame, list(frame.columns))
    repeated = np.flatnonzero(pd.Series(hashes).duplicated().to_numpy())
    return {"count": int(repeated.size), "rows": [int(i) for i in repeated[:EXAMPLES]]}


def _pii(frame: pd.DataFrame, detector: PiiDetector | None, seed: int) -> list[dict[str, str]]:
    if detector is None:
        return []
    sample = frame.iloc[_sample_rows(len(frame), PII_ROWS, seed)]
    return [
        {"column": str(f.column), "kind": str(f.kind), "found_by": str(f.found_by)}
        for f in detector(sample)
    ]


def _label_issues(
    sample: pd.DataFrame,
    label: str,
    task: Task | None,
    rows: np.ndarray,
    seed: int,
    notes: list[str],
) -> dict[str, Any] | None:
    if task != "classification":
        notes.append(f"label issues not checked: {label!r} looks like a regression target")
        return None
    known = sample[label].notna().to_numpy()
    y_text = sample[label][known].astype(str)
    classes, y = np.unique(y_text.to_numpy(), return_inverse=True)
    counts = np.bincount(y)
    if len(classes) < 2 or counts.min() < _FOLDS:
        notes.append(
            f"label issues not checked: every class of {label!r} needs at least {_FOLDS} rows "
            f"for {_FOLDS}-fold cross-validation; counts "
            f"{dict(zip(classes.tolist(), counts.tolist(), strict=True))}"
        )
        return None
    X = model_features(sample[known].drop(columns=[label]))
    probs = out_of_fold_probabilities(X, y, seed)
    find_label_issues = _cleanlab_filter()
    flagged = np.flatnonzero(find_label_issues(labels=y, pred_probs=probs))
    positions = rows[np.flatnonzero(known)][flagged]
    return {
        "method": "cleanlab find_label_issues on 5-fold out-of-fold probabilities "
        "(logistic regression)",
        "rows_checked": int(known.sum()),
        "count": int(flagged.size),
        "share": round(flagged.size / max(int(known.sum()), 1), 6),
        "rows": [int(i) for i in positions],
    }


def _cleanlab_filter() -> Any:
    try:
        from cleanlab.filter import find_label_issues
    except ImportError as exc:
        raise InvalidInput(
            "Finding label issues needs the cleanlab package, which is not installed. "
            "Install it with: pip install 'modelpilot[governance]'.",
            field="label_issues",
        ) from exc
    return find_label_issues


def model_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns a simple model can learn from: numbers and booleans as floats, text with at
    most 50 distinct values as categories; ids, free text and dates are left out.

    >>> list(model_features(pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "t": pd.to_datetime(
    ...     ["2024-01-01", "2024-01-02"])})).columns)
    ['a', 'b']
    """
    out: dict[str, pd.Series] = {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            out[column] = pd.to_numeric(series, errors="coerce").astype(np.float64)
        elif pd.api.types.is_datetime64_any_dtype(series):
            continue
        elif series.astype(str).nunique() <= _MAX_CATEGORIES:
            out[column] = series.astype(str).astype("category")
    return pd.DataFrame(out, index=frame.index)


def out_of_fold_probabilities(X: pd.DataFrame, y: np.ndarray, seed: int) -> np.ndarray:
    """Each row's class probabilities from a model that never saw it (stratified 5-fold
    logistic regression on standardised numbers and one-hot categories)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if X.shape[1] == 0:
        counts = np.bincount(y) / len(y)  # no usable feature: the class frequencies
        return np.tile(counts, (len(y), 1))
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    prepare = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(prepare, LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=_FOLDS, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(model, X, y, cv=folds, method="predict_proba"))

"""Dataset versions: content-hashed, stored as Parquet (or by reference), with schema and profile.

Logging the same content twice gives the same version and stores nothing new.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update

from modelpilot.artifacts import ArtifactStore, sha256_file
from modelpilot.clock import now_ms
from modelpilot.data.entities import DatasetVersion
from modelpilot.data.profile import compute_profile, infer_schema
from modelpilot.errors import InvalidInput, NotFound, shown
from modelpilot.store import Store
from modelpilot.store.schema import datasets
from modelpilot.tables import ACCEPTED, TableKind, delimiter, is_gzip, read_frame, table_kind
from modelpilot.tracking.validation import check_key, check_text


def content_digest(frame: pd.DataFrame) -> str:
    """A sha256 over column names, dtypes and every value (row order matters, index not).

    >>> a = pd.DataFrame({"x": [1, 2]})
    >>> content_digest(a) == content_digest(a.copy()) != content_digest(a[::-1])
    True
    """
    hasher = hashlib.sha256()
    for col in frame.columns:
        hasher.update(f"{col}\x00{frame[col].dtype}\x00".encode())
    try:
        row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    except TypeError as exc:
        raise InvalidInput(
            f"Cannot hash the dataset: {exc}. Columns must hold scalars (numbers, strings, "
            "booleans, dates); convert lists or dicts to strings first.",
            field="data",
        ) from exc
    hasher.update(row_hashes.tobytes())
    return hasher.hexdigest()


def log_dataset(
    store: Store,
    artifacts: ArtifactStore,
    data: pd.DataFrame | str | Path,
    name: str,
    *,
    source: str | None = None,
    risks: dict[str, Any] | None = None,
) -> DatasetVersion:
    """Record a dataset version: a DataFrame is stored as Parquet; a file path by reference.

    ``risks`` (``DataRisks.to_dict()``) is stored as ``profile["risks"]``; logging the same
    content again with a new assessment replaces the stored one.
    """
    check_key(name, "dataset")
    if source is not None:
        check_text(source, "dataset source", "source")
    if isinstance(data, pd.DataFrame):
        return _log_frame(store, artifacts, data, name, source, risks)
    if isinstance(data, (str, Path)):
        return _log_reference(store, Path(data), name, source, risks)
    raise InvalidInput(
        f"Dataset {name!r}: expected a pandas DataFrame or a path to a table file ({ACCEPTED}); "
        f"got {type(data).__name__}.",
        field="data",
    )


def _log_frame(
    store: Store,
    artifacts: ArtifactStore,
    frame: pd.DataFrame,
    name: str,
    source: str | None,
    risks: dict[str, Any] | None,
) -> DatasetVersion:
    existing = _find(store, name, content_digest(_checked_frame(frame, name)))
    if existing is not None:
        return _updated_risks(store, existing, risks)
    return record_dataset(store, with_risks(frame_version(artifacts, frame, name, source), risks))


def _log_reference(
    store: Store, path: Path, name: str, source: str | None, risks: dict[str, Any] | None
) -> DatasetVersion:
    """Large data stays where it is; DuckDB profiles it in bounded memory."""
    _check_file(path, name)
    existing = _find(store, name, sha256_file(path))
    if existing is not None:
        return _updated_risks(store, existing, risks)
    return record_dataset(store, with_risks(file_version(path, name, source), risks))


def with_risks(version: DatasetVersion, risks: dict[str, Any] | None) -> DatasetVersion:
    """``version`` with ``risks`` in its profile (unchanged when None)."""
    if risks is None:
        return version
    return dataclasses.replace(version, profile={**version.profile, "risks": risks})


def _updated_risks(
    store: Store, version: DatasetVersion, risks: dict[str, Any] | None
) -> DatasetVersion:
    """The recorded version, its stored risk assessment replaced by a newer one."""
    if risks is None or version.profile.get("risks") == risks:
        return version
    profile = {**version.profile, "risks": risks}
    with store.write() as conn:
        conn.execute(
            update(datasets)
            .where(datasets.c.name == version.name, datasets.c.digest == version.digest)
            .values(profile=profile)
        )
    return dataclasses.replace(version, profile=profile)


def _checked_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if len(frame.columns) == 0:
        raise InvalidInput(f"Dataset {name!r} has no columns.", field="data")
    return frame.rename(columns=str)


def _check_file(path: Path, name: str) -> TableKind:
    if not path.is_file():
        raise InvalidInput(f"Dataset {name!r}: no file at {path}.", field="data")
    kind = table_kind(path)
    if kind is None:
        raise InvalidInput(
            f"Dataset {name!r}: {path.name} is not a table file: use {ACCEPTED}.", field="data"
        )
    return kind


def read_table(path: Path, name: str) -> pd.DataFrame:
    """The rows of a table file (:mod:`modelpilot.tables`) about to be logged as ``name``."""
    return read_frame(path, _check_file(path, name))


def frame_version(
    artifacts: ArtifactStore, frame: pd.DataFrame, name: str, source: str | None
) -> DatasetVersion:
    """Describe a DataFrame (digest, schema, profile) and store its Parquet bytes; the version
    is not recorded yet (``created_ms`` 0): :func:`record_dataset` does that, locally or on
    the server, once the bytes are in ``artifacts``."""
    frame = _checked_frame(frame, name)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    location = artifacts.put_bytes(buffer.getvalue())
    schema, profile = infer_schema(frame), compute_profile(frame)
    return DatasetVersion(
        name, content_digest(frame), 0, "parquet", location, len(frame), schema, profile, source
    )


def file_version(path: Path, name: str, source: str | None) -> DatasetVersion:
    """Describe a table file kept where it is (by reference); not recorded yet."""
    kind = _check_file(path, name)
    digest = sha256_file(path)
    schema, profile, num_rows = _duckdb_profile(path, kind)
    where = str(path.absolute())
    return DatasetVersion(
        name, digest, 0, "reference", where, num_rows, schema, profile, source or where
    )


def record_dataset(store: Store, version: DatasetVersion) -> DatasetVersion:
    """Record a described version (idempotent: the same name and digest return the first)."""
    check_key(version.name, "dataset")
    if version.source is not None:
        check_text(version.source, "dataset source", "source")
    if version.storage not in ("parquet", "reference"):
        raise InvalidInput(
            f"Dataset {version.name!r}: storage must be 'parquet' or 'reference'; got "
            f"{shown(version.storage)}.",
            field="storage",
        )
    recorded = _insert(
        store,
        version.name,
        version.digest,
        version.storage,
        version.location,
        version.num_rows,
        version.schema,
        version.profile,
        version.source,
    )
    return _updated_risks(store, recorded, version.profile.get("risks"))


_NUMERIC_TYPES = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL",
)  # fmt: skip


def _duckdb_profile(
    path: Path, file_kind: TableKind
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Schema and profile of a file logged by reference, in one streaming DuckDB pass.

    One aggregate query rather than ``SUMMARIZE``: numeric statistics skip non-finite values
    (as the in-memory profile does; ``SUMMARIZE`` fails on a column holding ``inf``), and a
    column's kind follows its type, not whether an average came back.
    """
    import duckdb

    # (the separator and compression are said, not sniffed, as pandas is told them)
    compression = "gzip" if is_gzip(path) else "none"
    source = (
        "read_parquet(?)"
        if file_kind == "parquet"
        else f"read_csv_auto(?, delim='{delimiter(file_kind)}', compression='{compression}')"
    )
    with duckdb.connect() as con:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}", [str(path)]).fetchall()
        kinds = [(str(col), str(ctype)) for col, ctype, *_ in described]
        try:
            values = con.execute(_profile_query(kinds, source, std=True), [str(path)]).fetchone()
        except duckdb.OutOfRangeException:  # a variance too large for a double
            values = con.execute(_profile_query(kinds, source, std=False), [str(path)]).fetchone()
    assert values is not None
    num_rows = int(values[0])
    schema: list[dict[str, Any]] = []
    columns: dict[str, Any] = {}
    position = 1
    for col, ctype in kinds:
        kind = _kind(ctype)
        width = {"numeric": 7, "datetime": 3, "categorical": 2}[kind]
        count, *stats = values[position : position + width]
        position += width
        nulls = num_rows - int(count)
        schema.append({"name": col, "dtype": ctype.lower(), "nullable": nulls > 0})
        entry: dict[str, Any] = {
            "dtype": ctype.lower(),
            "count": int(count),
            "nulls": nulls,
            "kind": kind,
        }
        if kind == "numeric" and stats[0] is not None:
            low, high, mean, std, quantiles, _ = stats
            entry.update(
                min=float(low),
                max=float(high),
                mean=_finite_or_none(mean),
                std=_finite_or_none(0.0 if std is None and stats[5] == 1 else std),
                quantiles=dict(zip(("0.25", "0.5", "0.75"), map(float, quantiles), strict=True)),
            )
        elif kind == "datetime" and stats[0] is not None:
            entry.update(min=str(stats[0]), max=str(stats[1]))
        elif kind == "categorical":
            entry["unique"] = int(stats[0])
        columns[col] = entry
    return schema, {"num_rows": num_rows, "columns": columns}, num_rows


def _kind(ctype: str) -> str:
    base = ctype.upper().split("(")[0]
    if base in _NUMERIC_TYPES:
        return "numeric"
    if base.startswith(("DATE", "TIMESTAMP", "TIME")):
        return "datetime"
    return "categorical"


def _profile_query(kinds: list[tuple[str, str]], source: str, *, std: bool) -> str:
    """``count(*)``, then per column: numeric: count, min, max, avg, stddev, quartiles and the
    number of finite values; datetime: count, min, max; other: count, distinct values."""
    parts = ["count(*)"]
    for col, ctype in kinds:
        quoted = '"' + col.replace('"', '""') + '"'
        kind = _kind(ctype)
        if kind == "numeric":
            x = f"CAST({quoted} AS DOUBLE)"
            finite = f"FILTER (WHERE isfinite({x}))"
            spread = f"stddev_samp({x}) {finite}" if std else "NULL"
            parts += [
                f"count({quoted})", f"min({x}) {finite}", f"max({x}) {finite}",
                f"avg({x}) {finite}", spread,
                f"approx_quantile({x}, [0.25, 0.5, 0.75]) {finite}", f"count({x}) {finite}",
            ]  # fmt: skip
        elif kind == "datetime":
            parts += [f"count({quoted})", f"min({quoted})", f"max({quoted})"]
        else:
            parts += [f"count({quoted})", f"approx_count_distinct({quoted})"]
    return f"SELECT {', '.join(parts)} FROM {source}"


def _finite_or_none(value: object) -> float | None:
    number = None if value is None else float(value)  # type: ignore[arg-type]
    return number if number is not None and math.isfinite(number) else None


def _insert(
    store: Store,
    name: str,
    digest: str,
    storage: str,
    location: str,
    num_rows: int,
    schema: list[dict[str, Any]],
    profile: dict[str, Any],
    source: str | None,
) -> DatasetVersion:
    created = now_ms()
    with store.write() as conn:
        row = conn.execute(
            select(datasets).where(datasets.c.name == name, datasets.c.digest == digest)
        ).first()
        if row is None:
            conn.execute(
                insert(datasets).values(
                    name=name,
                    digest=digest,
                    created_ms=created,
                    storage=storage,
                    location=location,
                    num_rows=num_rows,
                    schema=schema,
                    profile=profile,
                    source=source,
                )
            )
            return DatasetVersion(
                name, digest, created, storage, location, num_rows, schema, profile, source
            )
    return _entity(row)


def _find(store: Store, name: str, digest: str) -> DatasetVersion | None:
    with store.read() as conn:
        row = conn.execute(
            select(datasets).where(datasets.c.name == name, datasets.c.digest == digest)
        ).first()
    return None if row is None else _entity(row)


def get_dataset(store: Store, ref: str) -> DatasetVersion:
    """``name@version`` (a prefix of the content hash) or ``name`` for the newest version."""
    name, _, version = ref.partition("@")
    with store.read() as conn:
        query = select(datasets).where(datasets.c.name == name)
        if version:
            query = query.where(datasets.c.digest.startswith(version.lower()))
        rows = conn.execute(query.order_by(datasets.c.created_ms.desc())).all()
        if not rows:
            known = (
                conn.execute(
                    select(datasets.c.digest)
                    .where(datasets.c.name == name)
                    .order_by(datasets.c.created_ms.desc())
                    .limit(5)
                )
                .scalars()
                .all()
            )
    if not rows:
        if version and known:
            raise NotFound(
                f"Dataset {name!r} has no version {shown(version)}. Recent versions: "
                f"{', '.join(d[:12] for d in known)}.",
                field="dataset",
            )
        raise NotFound(
            f"No dataset named {shown(name)}. Log one with mp.log_dataset(df, name=...).",
            field="dataset",
        )
    if version and len({r.digest for r in rows}) > 1:
        raise InvalidInput(
            f"Dataset version {shown(version)} of {name!r} is ambiguous; give more "
            "characters of the hash.",
            field="dataset",
        )
    return _entity(rows[0])


def list_datasets(store: Store) -> list[DatasetVersion]:
    """Every dataset version, newest first."""
    with store.read() as conn:
        rows = conn.execute(select(datasets).order_by(datasets.c.created_ms.desc())).all()
    return [_entity(r) for r in rows]


def load_dataset(store: Store, artifacts: ArtifactStore, ref: str) -> pd.DataFrame:
    """Read a dataset version back as a DataFrame."""
    return read_dataset(artifacts, get_dataset(store, ref))


def read_dataset(artifacts: ArtifactStore, version: DatasetVersion) -> pd.DataFrame:
    """The rows of ``version``: its verified Parquet blob, or its file checked by hash."""
    if version.storage == "parquet":
        return pd.read_parquet(io.BytesIO(artifacts.get_bytes(version.location)))
    path = checked_file(version)
    return read_frame(path, _check_file(path, version.name))


def checked_file(version: DatasetVersion) -> Path:
    """The file of a version stored by reference, refused if missing or changed since."""
    path = Path(version.location)
    if not path.is_file() or sha256_file(path) != version.digest:
        raise NotFound(
            f"Dataset {version.ref} is stored by reference at {path}, which is missing "
            "or has changed since it was logged.",
            field="dataset",
        )
    return path


def _entity(row: Any) -> DatasetVersion:
    return DatasetVersion(
        row.name,
        row.digest,
        row.created_ms,
        row.storage,
        row.location,
        row.num_rows,
        row.schema,
        row.profile,
        row.source,
    )

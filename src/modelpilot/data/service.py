"""Dataset versions: content-hashed, stored as Parquet (or by reference), with schema and profile.

Logging the same content twice gives the same version and stores nothing new.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
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
        f"Dataset {name!r}: expected a pandas DataFrame or a path to a Parquet/CSV file; "
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


def _check_file(path: Path, name: str) -> None:
    if not path.is_file():
        raise InvalidInput(f"Dataset {name!r}: no file at {path}.", field="data")
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidInput(
            f"Dataset {name!r}: {path.name} is neither .parquet nor .csv.", field="data"
        )


def read_table(path: Path, name: str) -> pd.DataFrame:
    """The rows of a Parquet/CSV file about to be logged as dataset ``name``."""
    _check_file(path, name)
    return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)


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
    """Describe a Parquet/CSV file kept where it is (by reference); not recorded yet."""
    _check_file(path, name)
    digest = sha256_file(path)
    schema, profile, num_rows = _duckdb_profile(path)
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


def _duckdb_profile(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    import duckdb

    reader = "read_parquet" if path.suffix.lower() == ".parquet" else "read_csv_auto"
    with duckdb.connect() as con:
        rows = con.execute(f"SUMMARIZE SELECT * FROM {reader}(?)", [str(path)]).fetchall()
    schema: list[dict[str, Any]] = []
    columns: dict[str, Any] = {}
    num_rows = 0
    for col, ctype, cmin, cmax, uniq, avg, std, q25, q50, q75, count, null_pct in rows:
        num_rows = int(count)
        nulls = round(float(null_pct or 0) * count / 100)
        schema.append({"name": col, "dtype": str(ctype).lower(), "nullable": nulls > 0})
        numeric = avg is not None
        entry: dict[str, Any] = {
            "dtype": str(ctype).lower(),
            "count": int(count) - nulls,
            "nulls": nulls,
            "kind": "numeric" if numeric else "categorical",
        }
        if numeric:
            entry.update(
                min=float(cmin),
                max=float(cmax),
                mean=float(avg),
                std=float(std or 0.0),
                quantiles={"0.25": float(q25), "0.5": float(q50), "0.75": float(q75)},
            )
        else:
            entry["unique"] = int(uniq)
        columns[col] = entry
    return schema, {"num_rows": num_rows, "columns": columns}, num_rows


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
    return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)


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

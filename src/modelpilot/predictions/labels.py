"""Labels that arrive late: stored per deployment, joined to logged predictions by request id.

Labels are appended as Parquet segments under ``<home>/labels/<deployment>/``; nothing is
overwritten, and a label for a request the log has never seen is refused, not stored.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelpilot.errors import InvalidInput, NotFound, shown
from modelpilot.predictions.files import labels_folder, private_file
from modelpilot.predictions.reader import PredictionReader

_LABEL_TYPES = (bool, int, float, str)


def log_labels(
    home: Path,
    deployment: str,
    request_ids: Sequence[str],
    labels: Sequence[Any],
    *,
    check_deployment: Callable[[str], object] | None = None,
) -> int:
    """Record ground truth for logged predictions; returns the number of labels stored.

    With ``check_deployment`` (``release.get_deployment`` bound to the store: it raises
    NotFound listing the deployments), an unknown deployment is refused by it; without it, one
    the prediction log has never seen is (so a typo is not reported as unknown ids).
    """
    ids = [str(r) for r in request_ids]
    values = list(labels)
    if not ids:
        raise InvalidInput(
            "No labels given: pass request ids and their labels.", field="request_ids"
        )
    if len(ids) != len(values):
        raise InvalidInput(
            f"{len(ids)} request ids but {len(values)} labels; give one label per id.",
            field="labels",
        )
    bad = next(
        (
            i
            for i, v in enumerate(values)
            if type(v) not in _LABEL_TYPES and not _is_numpy_scalar(v)
        ),
        None,
    )
    if bad is not None:
        raise InvalidInput(
            f"Label {bad} (request {ids[bad]}) is {shown(values[bad])} of type "
            f"{type(values[bad]).__name__}; labels must be numbers, booleans or strings.",
            field="labels",
        )
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1:
        raise InvalidInput(
            f"Labels mix {' and '.join(sorted(kinds))} values; use one type for a deployment.",
            field="labels",
        )
    reader = PredictionReader.of_home(home)
    _require_deployment(reader, deployment, check_deployment)
    known = reader.known_request_ids(deployment, ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} of {len(ids)} request ids are not in the prediction log of "
            f"deployment {deployment!r} (e.g. {', '.join(unknown[:3])}). Nothing was stored; "
            "check the ids, or flush the server's log first.",
            field="request_ids",
        )
    folder = labels_folder(home, deployment)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "request_id": ids,
            "label": [v.item() if _is_numpy_scalar(v) else v for v in values],
            "logged_ms": [int(time.time() * 1000)] * len(ids),
        }
    )
    # time first (newest wins when read in name order), then a random id: two processes that
    # share a folder may well share a pid (containers), never a random id
    name = f"labels-{time.time_ns()}-{secrets.token_hex(6)}.parquet"
    tmp = folder / f".{name}.tmp"
    with private_file(tmp) as handle:  # 0600 like the prediction log it joins
        pq.write_table(table, handle)
    os.replace(tmp, folder / name)
    return len(ids)


def read_labels(home: Path, deployment: str) -> pd.DataFrame:
    """Every label logged for a deployment (the newest wins for a repeated request id)."""
    folder = labels_folder(home, deployment)
    files = sorted(folder.glob("labels-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["request_id", "label", "logged_ms"])
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return (
        frame.sort_values("logged_ms")
        .drop_duplicates("request_id", keep="last")
        .reset_index(drop=True)
    )


def join_labels(
    rows: pd.DataFrame, labels: pd.DataFrame, *, how: Literal["left", "inner"] = "left"
) -> pd.DataFrame:
    """Logged rows with their ``label`` (joined on ``request_id``): ``how="left"`` keeps the
    unlabelled rows, ``"inner"`` only the labelled ones. Give one row per request.

    >>> rows = pd.DataFrame({"request_id": ["a", "b"], "out.prediction": [1, 0]})
    >>> join_labels(rows, pd.DataFrame({"request_id": ["b"], "label": [0]}), how="inner")
      request_id  out.prediction  label
    0          b               0      0
    """
    return rows.merge(labels[["request_id", "label"]], on="request_id", how=how)


def _require_deployment(
    reader: PredictionReader, deployment: str, check: Callable[[str], object] | None
) -> None:
    if check is not None:
        check(deployment)  # NotFound naming it and listing the deployments
        return
    logged = reader.deployments()
    if deployment not in logged:
        raise NotFound(
            f"No predictions logged for deployment {shown(deployment)}. Deployments in the log: "
            f"{', '.join(logged[:20]) or 'none yet'}. Check the name, or flush the server's log "
            "first.",
            field="deployment",
        )


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item")

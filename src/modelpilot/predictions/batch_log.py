"""What the prediction log records about one predict call of the data plane, column by column.

Called after every batch (on the event loop for quick models), so it only rearranges what the
batch already holds: the rows become one float matrix, transposed into contiguous columns;
ids repeat per request; outputs are the batch's own arrays.

The log sits below ``serving``: what it reads of the data plane's runtime, requests, outputs
and input-domain flags is named by the protocols here (``serving``'s classes satisfy them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from modelpilot.matrix import float_matrix
from modelpilot.models import LoadedModel
from modelpilot.predictions.batch import LogBatch


class LoggedModel(Protocol):
    """The served model version a batch ran on."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def model(self) -> LoadedModel: ...
    @property
    def all_numeric(self) -> bool: ...
    @property
    def classes(self) -> list[Any] | None: ...


class RequestIds(Protocol):
    """Who a request was: its id, and the deployment and variant that routed it."""

    @property
    def request_id(self) -> str: ...
    @property
    def deployment(self) -> str | None: ...
    @property
    def variant(self) -> str | None: ...


class LoggedRequest(Protocol):
    """One request of the batch: its rows, ids and when it was queued."""

    @property
    def rows(self) -> Sequence[Sequence[Any]]: ...
    @property
    def context(self) -> RequestIds: ...
    @property
    def enqueued(self) -> float: ...


class LoggedOutput(Protocol):
    """The batch's answers, row-aligned with its input rows."""

    @property
    def predictions(self) -> np.ndarray: ...
    @property
    def probabilities(self) -> np.ndarray | None: ...


class DomainColumns(Protocol):
    """Per row: outside the model's input domain, and which fields are."""

    @property
    def is_outside(self) -> np.ndarray: ...
    @property
    def fields(self) -> list[str | None]: ...
    @property
    def matrix(self) -> np.ndarray | None: ...


def log_batch(
    runtime: LoggedModel,
    batch: Sequence[LoggedRequest],
    output: LoggedOutput | None,
    error: BaseException | None,
    domain_flags: DomainColumns | None = None,
) -> LogBatch:
    """A predict call's requests and answers as log columns (see :class:`LogBatch`).

    With ``domain_flags`` (models whose signature records an input domain), two more columns:
    ``out_of_domain`` (bool) and ``out_of_domain_fields`` (the outside fields and how, e.g.
    ``age:out_of_range,plan:unseen_category``; see :mod:`.domain_fields`).
    """
    now_ms = int(time.time() * 1000)
    clock = time.perf_counter()
    contexts = [pending.context for pending in batch]  # the app's RequestContext tuples
    counts = [len(pending.rows) for pending in batch]
    # Per request, repeated for each of its rows (np.repeat keeps one-row requests cheap).
    request_ids = _repeat([c.request_id for c in contexts], counts)
    deployments = _repeat([c.deployment for c in contexts], counts)
    variants = _repeat([c.variant for c in contexts], counts)
    waited_ms = np.repeat([(clock - p.enqueued) * 1000 for p in batch], counts)
    size = len(request_ids)
    rows = (
        np.zeros(size, dtype=np.int64)
        if size == len(counts)
        else np.concatenate([np.arange(n, dtype=np.int64) for n in counts])
    )
    columns: dict[str, Any] = {
        "request_id": request_ids,
        "row": rows,
        "timestamp_ms": np.full(size, now_ms, dtype=np.int64),
        "version": np.full(size, runtime.version, dtype=np.int64),
        "deployment": deployments,
        "variant": variants,
        "latency_ms": waited_ms,
        "error": [None if error is None else f"{type(error).__name__}: {error}"] * size,
    }
    if domain_flags is not None:
        columns["out_of_domain"] = domain_flags.is_outside
        columns["out_of_domain_fields"] = domain_flags.fields
    values = [row for pending in batch for row in pending.rows]
    specs = runtime.model.signature.inputs
    if runtime.all_numeric:  # one matrix, one contiguous column each
        matrix = None if domain_flags is None else domain_flags.matrix
        if matrix is None:
            matrix = float_matrix(values)  # (rows packed by the compiled decoder too)
        by_column = matrix.T.copy()
        for j, spec in enumerate(specs):
            column = by_column[j]
            columns[f"in.{spec.name}"] = (
                column if "float" in spec.dtype else column.astype(np.int64)
            )
    else:
        for spec, column in zip(specs, zip(*values, strict=True), strict=True):
            columns[f"in.{spec.name}"] = list(column)
    if output is not None:
        columns["out.prediction"] = output.predictions
        if output.probabilities is not None and runtime.classes is not None:
            by_class = output.probabilities.T.copy()
            for c, label in enumerate(runtime.classes):
                columns[f"out.proba.{label}"] = by_class[c]
    return LogBatch(runtime.name, size, columns)


def _repeat(values: list[Any], counts: list[int]) -> list[Any]:
    """Each value ``counts[i]`` times, in order (no work when every count is one)."""
    if len(values) == sum(counts):
        return values
    return [v for v, n in zip(values, counts, strict=True) for _ in range(n)]

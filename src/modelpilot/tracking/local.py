"""``LocalTracking``: the tracking service in-process, over today's store functions.

A thin adapter: every method is one call into :mod:`modelpilot.tracking.service`, so the
local behaviour is exactly what the SDK always had; the server wraps the same class.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.clock import now_ms
from modelpilot.errors import InvalidInput, shown
from modelpilot.store import Store
from modelpilot.tracking import points, query, service
from modelpilot.tracking.entities import Experiment, MetricPoint, Run, RunStatus
from modelpilot.tracking.owner import ProcessOwner
from modelpilot.tracking.protocol import MAX_PAGE_SIZE, MetricRow, RunPage
from modelpilot.tracking.validation import check_key, check_metric_value, check_step

# Applied batch keys are pruned at most this often (each prune is one indexed DELETE).
PRUNE_EVERY_MS = 3600 * 1000


class LocalTracking:
    """Tracking on a store in this process.

    ``owner`` is the process that will end the runs it creates (the SDK passes its own, so a
    killed training script's runs become KILLED); the server passes none. ``actor`` is the
    authenticated caller (the server's ``token:<name>``): runs record it as their creator and
    every change but metric points is recorded in the audit log under it.
    """

    def __init__(
        self, store: Store, *, owner: ProcessOwner | None = None, actor: str | None = None
    ) -> None:
        self.store = store
        self.owner = owner
        self.actor = actor
        self._pruned_ms = 0  # when applied batch keys were last pruned

    def acting_as(self, actor: str) -> LocalTracking:
        """The same service recording changes as ``actor`` (one per server request)."""
        return LocalTracking(self.store, owner=self.owner, actor=actor)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if needed."""
        return service.get_or_create_experiment(self.store, name)

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        code_revision: str | None = None,
        environment: Mapping[str, Any] | None = None,
        request_key: str | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (a ``request_key`` seen before returns the
        run that request created: the client's retry after a lost response)."""
        exp = service.get_or_create_experiment(self.store, experiment)
        return service.create_run(
            self.store,
            exp,
            name=name,
            parent_run_id=parent_run_id,
            tags=tags,
            code_revision=code_revision,
            environment=environment,
            owner=self.owner,
            actor=self.actor,
            request_key=request_key,
        )

    def get_run(self, run_id: str) -> Run:
        """A run with params, tags and latest metrics."""
        return service.get_run(self.store, run_id)

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run starting with ``prefix``."""
        return service.resolve_run_id(self.store, prefix)

    def list_experiments(self) -> list[Experiment]:
        """Every experiment."""
        return service.list_experiments(self.store)

    def set_status(self, run_id: str, status: RunStatus) -> None:
        """End a run with ``status``."""
        service.end_run(self.store, run_id, status, actor=self.actor)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record params (immutable once logged)."""
        service.log_params(self.store, run_id, params, actor=self.actor)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        """Set or overwrite tags."""
        service.set_tags(self.store, run_id, tags, actor=self.actor)

    def log_metrics(
        self, run_id: str, rows: Sequence[MetricRow], *, batch_key: str | None = None
    ) -> None:
        """Validate and append points of one run in one transaction; a ``batch_key`` applied
        before is skipped, so a re-sent batch is stored once."""
        clean = validate_metric_rows(rows)
        if batch_key is not None and now_ms() - self._pruned_ms > PRUNE_EVERY_MS:
            self._pruned_ms = now_ms()
            points.prune_keys(self.store)
        if clean:
            service.log_metric_rows(self.store, run_id, clean, batch_key=batch_key)
        else:  # nothing to write, but an unknown run is still NotFound (as for tags)
            service.require_run(self.store, run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of ``key``."""
        return service.get_metric_history(self.store, run_id, key)

    def search_runs(
        self,
        experiment: str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        *,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> RunPage:
        """One page of runs matching ``filter``, newest first unless ``order_by`` says else."""
        check_page_size(max_results)
        offset = decode_page_token(page_token)
        experiment_id = None
        if experiment is not None:
            experiment_id = service.require_experiment(self.store, experiment).id
        if self.owner is not None:  # the SDK's own store: end runs of dead processes first
            service.mark_abandoned_runs(self.store)
        with self.store.read() as conn:
            ids = query.search_run_ids(
                conn,
                self.store.dialect,
                experiment_id,
                filter,
                order_by,
                offset=offset,
                limit=max_results + 1,  # one more: is there a next page?
            )
        found = {run.id: run for run in service.get_runs_by_id(self.store, ids[:max_results])}
        end = offset + max_results
        return RunPage(
            runs=[found[i] for i in ids[:max_results]],
            next_page_token=encode_page_token(end) if len(ids) > max_results else None,
        )


def validate_metric_rows(rows: Sequence[MetricRow]) -> list[MetricRow]:
    """The rows with keys, values and steps checked (each distinct key once).

    Plain finite floats and ints take a fast path (what a parsed JSON batch holds): the full
    checks cost more than the insert for 10,000-point batches (benchmarks/tracking.py).
    """
    keys: set[str] = set()
    clean: list[MetricRow] = []
    for row in rows:
        key, value, step, timestamp_ms = row
        if key not in keys:
            keys.add(check_key(key, "metric"))
        if (
            type(value) is float
            and math.isfinite(value)
            and type(step) is int
            and type(timestamp_ms) is int
            and type(row) is tuple
        ):
            clean.append(row)  # already plain: kept as is, no new tuple
            continue
        if type(value) is not float or not math.isfinite(value):
            value = check_metric_value(key, value)
        if type(step) is not int:
            step = check_step(key, step)
        clean.append((key, value, step, int(timestamp_ms)))
    return clean


def check_page_size(max_results: int) -> None:
    """Refuse unbounded or oversized pages."""
    if not 1 <= max_results <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_PAGE_SIZE}; got {shown(max_results)}. "
            "Page through larger results with page_token.",
            field="max_results",
        )


def encode_page_token(offset: int) -> str:
    """An opaque token for the page starting at ``offset``.

    >>> decode_page_token(encode_page_token(200))
    200
    """
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset inside a token from :func:`encode_page_token` (0 for None)."""
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, offset = "", -1
    if kind != "offset" or offset < 0:
        raise InvalidInput(
            f"page_token {shown(token)} is not a token this server issued. Pass the "
            "next_page_token of the previous page, or none for the first page.",
            field="page_token",
        )
    return offset

"""``HttpTracking``: :class:`~modelpilot.tracking.protocol.TrackingService` over HTTP.

Retries with exponential backoff when the server cannot be reached, answers 503 (it is
restarting, or its store is briefly down) or the connection dropped mid-request. Repeating
reads, status changes, params and tags changes nothing; a new run and a metric batch carry an
``Idempotency-Key`` (a uuid made here) that the server records in the same transaction as the
change, so a request re-sent after its response was lost is applied once. A batch that still
failed after the retry window keeps its key: when the SDK's buffer sends those points again,
they go first, under the same key.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from modelpilot.client.transport import HttpService, decode_reply
from modelpilot.errors import Unavailable
from modelpilot.tracking.codec import (
    experiment_from_json,
    points_from_json,
    run_from_json,
)
from modelpilot.tracking.entities import Experiment, MetricPoint, Run, RunStatus
from modelpilot.tracking.local import validate_metric_rows
from modelpilot.tracking.protocol import MetricRow, RunPage
from modelpilot.tracking.validation import check_run_prefix

_KEY = "Idempotency-Key"


class HttpTracking(HttpService):
    """Tracking calls sent to ``modelpilot server`` at ``base_url`` with a bearer token."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retry_for_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url, token=token, timeout_s=timeout_s, retry_for_s=retry_for_s, transport=transport
        )
        # run id -> the (key, rows) batches of a send that failed after the retry window
        self._unsettled: dict[str, list[tuple[str, list[MetricRow]]]] = {}
        self._unsettled_lock = threading.Lock()

    # -- the protocol ---------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if needed."""
        data = self._call("POST", "/api/v1/experiments", {"name": name})
        return experiment_from_json(data)

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        code_revision: str | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment``."""
        body = {
            "experiment": experiment,
            "name": name,
            "parent_run_id": parent_run_id,
            "tags": dict(tags) if tags else None,
            "code_revision": code_revision,
            "environment": dict(environment) if environment else None,
        }
        key = {_KEY: uuid.uuid4().hex}
        return run_from_json(self._call("POST", "/api/v1/runs", body, headers=key))

    def get_run(self, run_id: str) -> Run:
        """A run with params, tags and latest metrics."""
        return run_from_json(self._call("GET", f"/api/v1/runs/{run_id}"))

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run starting with ``prefix``, resolved by the server."""
        path = f"/api/v1/run-ids/{quote(check_run_prefix(prefix), safe='')}"
        data = self._call("GET", path)
        return str(data["run_id"])

    def list_experiments(self) -> list[Experiment]:
        """Every experiment."""
        data = self._call("GET", "/api/v1/experiments")
        return [experiment_from_json(e) for e in data["experiments"]]

    def set_status(self, run_id: str, status: RunStatus) -> None:
        """End a run with ``status``."""
        body = {"status": RunStatus(status).value}
        self._call("PUT", f"/api/v1/runs/{run_id}/status", body)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record params (re-sending the same values is harmless)."""
        body = {"params": _plain(params)}
        self._call("POST", f"/api/v1/runs/{run_id}/params", body)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        """Set or overwrite tags."""
        body = {"tags": _plain(tags)}
        self._call("POST", f"/api/v1/runs/{run_id}/tags", body)

    def log_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Append one batch of points (checked here first: JSON cannot even carry a NaN)."""
        self.send_checked_metrics(run_id, validate_metric_rows(rows))

    def send_checked_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Send points already checked (by the SDK before buffering) without checking again.

        When an earlier call failed with its outcome unknown, the SDK's buffer hands the same
        points back in front of newer ones: they are re-sent under the keys they had, so the
        server skips what it applied already."""
        with self._unsettled_lock:
            earlier = self._unsettled.pop(run_id, [])
        plan: list[tuple[str, list[MetricRow]]] = []
        rest = list(rows)
        for key, segment in earlier:
            if rest[: len(segment)] != segment:
                break
            plan.append((key, segment))
            rest = rest[len(segment) :]
        if rest or not plan:  # an empty batch still asks: an unknown run is NotFound
            plan.append((uuid.uuid4().hex, rest))
        path = f"/api/v1/runs/{run_id}/metrics"
        for key, segment in plan:
            try:
                self._call("POST", path, orjson.dumps({"rows": segment}), headers={_KEY: key})
            except Unavailable:
                with self._unsettled_lock:  # the caller keeps all of these points for later
                    self._unsettled[run_id] = plan
                raise

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of ``key``."""
        data = self._call("GET", f"/api/v1/runs/{run_id}/metric-history", params={"key": key})
        return points_from_json(key, data["points"])

    def search_runs(
        self,
        experiment: str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        *,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> RunPage:
        """One page of matching runs."""
        body = {
            "experiment": experiment,
            "filter": filter,
            "order_by": list(order_by),
            "page_token": page_token,
            "max_results": max_results,
        }
        data = self._call("POST", "/api/v1/runs/search", body)
        return RunPage([run_from_json(r) for r in data["runs"]], data["next_page_token"])

    # -- plumbing -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request, retrying (every call is safe to repeat: see the module), and
        map error bodies."""
        reply = self.send(
            lambda: self._send(method, path, body, params, headers),
            f"{method} {path}",
            idempotent=True,
        )
        return decode_reply(reply, self.base_url)

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        if isinstance(body, bytes):  # pre-encoded with orjson (metric batches)
            headers = {**(headers or {}), "Content-Type": "application/json"}
            return self.http.request(method, path, content=body, params=params, headers=headers)
        return self.http.request(method, path, json=body, params=params, headers=headers)


def _plain(values: Mapping[str, object]) -> dict[str, str]:
    """Values as the text the local store would keep (``str(value)``), so a param logged over
    HTTP reads back exactly as one logged locally."""
    return {k: v if isinstance(v, str) else str(v) for k, v in values.items()}


__all__ = ["HttpTracking"]

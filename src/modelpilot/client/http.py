"""``HttpTracking``: :class:`~modelpilot.tracking.protocol.TrackingService` over HTTP.

Retries with exponential backoff when the server cannot be reached or answers 503 (it is
restarting, or its store is briefly down). A call is retried after a dropped connection
only when repeating it cannot double anything (reads, status, params, tags); a metric batch
or a new run is retried only when the request never reached the server (connection refused)
or the server said 503 (nothing committed), so no point is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from modelpilot.client.transport import decode_reply, send_with_retries
from modelpilot.tracking.codec import (
    experiment_from_json,
    points_from_json,
    run_from_json,
)
from modelpilot.tracking.entities import Experiment, MetricPoint, Run, RunStatus
from modelpilot.tracking.local import validate_metric_rows
from modelpilot.tracking.protocol import MetricRow, RunPage


class HttpTracking:
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
        self.base_url = base_url.rstrip("/")
        self.retry_for_s = retry_for_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    # -- the protocol ---------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if needed."""
        data = self._call("POST", "/api/v1/experiments", {"name": name}, idempotent=True)
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
        return run_from_json(self._call("POST", "/api/v1/runs", body, idempotent=False))

    def get_run(self, run_id: str) -> Run:
        """A run with params, tags and latest metrics."""
        return run_from_json(self._call("GET", f"/api/v1/runs/{run_id}", idempotent=True))

    def set_status(self, run_id: str, status: RunStatus) -> None:
        """End a run with ``status``."""
        body = {"status": RunStatus(status).value}
        self._call("PUT", f"/api/v1/runs/{run_id}/status", body, idempotent=True)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record params (re-sending the same values is harmless)."""
        body = {"params": _plain(params)}
        self._call("POST", f"/api/v1/runs/{run_id}/params", body, idempotent=True)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        """Set or overwrite tags."""
        body = {"tags": _plain(tags)}
        self._call("POST", f"/api/v1/runs/{run_id}/tags", body, idempotent=True)

    def log_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Append one batch of points (checked here first: JSON cannot even carry a NaN)."""
        self.send_checked_metrics(run_id, validate_metric_rows(rows))

    def send_checked_metrics(self, run_id: str, rows: Sequence[MetricRow]) -> None:
        """Send points already checked (by the SDK before buffering) without checking again."""
        if rows:
            body = orjson.dumps({"rows": rows})
            self._call("POST", f"/api/v1/runs/{run_id}/metrics", body, idempotent=False)

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of ``key``."""
        data = self._call(
            "GET", f"/api/v1/runs/{run_id}/metric-history", params={"key": key}, idempotent=True
        )
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
        data = self._call("POST", "/api/v1/runs/search", body, idempotent=True)
        return RunPage([run_from_json(r) for r in data["runs"]], data["next_page_token"])

    # -- plumbing -------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> Any:
        """Send one request, retrying what is safe to retry, and map error bodies."""
        reply = send_with_retries(
            lambda: self._send(method, path, body, params),
            base_url=self.base_url,
            what=f"{method} {path}",
            idempotent=idempotent,
            retry_for_s=self.retry_for_s,
        )
        return decode_reply(reply, self.base_url)

    def _send(
        self, method: str, path: str, body: Any, params: Mapping[str, str] | None
    ) -> httpx.Response:
        if isinstance(body, bytes):  # pre-encoded with orjson (metric batches)
            headers = {"Content-Type": "application/json"}
            return self._client.request(method, path, content=body, params=params, headers=headers)
        return self._client.request(method, path, json=body, params=params)


def _plain(values: Mapping[str, object]) -> dict[str, str]:
    """Values as the text the local store would keep (``str(value)``), so a param logged over
    HTTP reads back exactly as one logged locally."""
    return {k: v if isinstance(v, str) else str(v) for k, v in values.items()}


__all__ = ["HttpTracking"]

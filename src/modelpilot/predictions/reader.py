"""The one typed reader of the prediction log: rows, windows, per-request and per-variant
figures, request ids, and the read-only SQL of ``modelpilot logs query``.

Serving, release, monitoring, the SDK and the CLI read the log through
:class:`PredictionReader` and never write SQL against it, so the segment layout (and DuckDB)
can change in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.clock import since_ms
from modelpilot.predictions import sql as log_sql
from modelpilot.predictions.domain_fields import parse_domain_fields
from modelpilot.predictions.files import has_segments, log_folder

SAMPLE_SIZE = 5000  # per-request latencies and predictions kept per variant (a fixed seed)


@dataclass(frozen=True)
class VariantEvidence:
    """What the log says about one variant of a deployment over a window of time."""

    requests: int = 0
    errors: int = 0  # requests answered with an error
    p99_latency_ms: float | None = None  # over rows
    p50_latency_ms: float | None = None  # over rows
    latencies_ms: np.ndarray | None = field(default=None, repr=False)  # a per-request sample
    predictions: np.ndarray | None = field(default=None, repr=False)  # the score column, if any


class PredictionReader:
    """Reads one prediction-log folder (usually ``PredictionReader.of_home(home)``).

    Every method sees the segments on disk when it is called; rows still in a server's memory
    or write-ahead file appear after its next flush.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def of_home(cls, home: Path) -> PredictionReader:
        """The reader of a modelpilot home's prediction log."""
        return cls(log_folder(home))

    def rows(
        self, *, model: str | None = None, deployment: str | None = None, since: Any = None
    ) -> pd.DataFrame:
        """Logged rows, oldest first, optionally of one model/deployment and after a time
        (``since``: an ISO time, a datetime, or a duration back from now: ``30m``, ``2h``)."""
        clauses, params = _filters(model, deployment, since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if not has_segments(self.folder):
            return pd.DataFrame()
        with log_sql.connect(self.folder) as con:
            sql = f"SELECT * FROM predictions{where} ORDER BY timestamp_ms"
            return con.execute(sql, params).df()

    def window(self, deployment: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """A deployment's served rows in ``[start_ms, end_ms)``, shadow variants left out
        (their answers never reached a caller): what monitoring scores."""
        if not has_segments(self.folder):
            return pd.DataFrame(columns=["request_id"])
        with log_sql.connect(self.folder) as con:
            return con.execute(
                "SELECT * FROM predictions WHERE deployment = ? "
                "AND variant IS DISTINCT FROM 'shadow' AND timestamp_ms >= ? AND timestamp_ms < ?",
                [deployment, start_ms, end_ms],
            ).df()

    def requests(self, deployment: str, *, since_ms: int = 0) -> pd.DataFrame:
        """One row per request of a deployment since ``since_ms``: variant, latency, error, and
        the outputs of its first row (labels are per request id), for the A/B report."""
        if not has_segments(self.folder):
            return pd.DataFrame(columns=["request_id", "variant", "latency_ms", "error"])
        with log_sql.connect(self.folder) as con:
            outputs = "".join(
                f', arg_min("{c}", "row") AS "{c}"' for c in _columns(con) if _is_output(c)
            )
            return con.execute(
                "SELECT request_id, any_value(variant) AS variant, max(latency_ms) AS latency_ms, "
                f"any_value(error) AS error{outputs} FROM predictions "
                "WHERE deployment = ? AND timestamp_ms >= ? GROUP BY request_id",
                [deployment, since_ms],
            ).df()

    def variant_stats(
        self, deployment: str, variant: str, since_ms: int, until_ms: int
    ) -> VariantEvidence:
        """Requests, errors, p99 and p50 latency, a per-request latency sample and a sample of
        the score column for one variant of a deployment in ``[since_ms, until_ms)`` (rollout
        evidence)."""
        if not has_segments(self.folder):
            return VariantEvidence()
        where = "deployment = ? AND variant = ? AND timestamp_ms >= ? AND timestamp_ms < ?"
        params: list[Any] = [deployment, variant, since_ms, until_ms]
        with log_sql.connect(self.folder) as con:
            requests, errors, p99, p50 = con.execute(
                "SELECT count(DISTINCT request_id), "
                "count(DISTINCT request_id) FILTER (WHERE error IS NOT NULL), "
                "quantile_cont(latency_ms, 0.99), quantile_cont(latency_ms, 0.5) "
                f"FROM predictions WHERE {where}",
                params,
            ).fetchone() or (0, 0, None, None)
            latencies = con.execute(
                "SELECT l FROM (SELECT max(latency_ms) AS l FROM predictions "
                f"WHERE {where} GROUP BY request_id) "
                f"USING SAMPLE reservoir({SAMPLE_SIZE} ROWS) REPEATABLE (0)",
                params,
            ).fetchall()
            score = _score_column(_columns(con))
            predictions = None
            if score is not None:
                values = con.execute(
                    f'SELECT "{score}" FROM predictions WHERE {where} AND "{score}" IS NOT NULL '
                    f"LIMIT {SAMPLE_SIZE}",
                    params,
                ).fetchall()
                predictions = np.asarray([v[0] for v in values], dtype=np.float64)
        return VariantEvidence(
            requests=int(requests or 0),
            errors=int(errors or 0),
            p99_latency_ms=None if p99 is None else float(p99),
            p50_latency_ms=None if p50 is None else float(p50),
            latencies_ms=np.asarray([v[0] for v in latencies if v[0] is not None], np.float64),
            predictions=predictions,
        )

    def deployments(self) -> list[str]:
        """The deployments that have rows in the log, by name."""
        if not has_segments(self.folder):
            return []
        with log_sql.connect(self.folder) as con:
            rows = con.execute(
                "SELECT DISTINCT deployment FROM predictions "
                "WHERE deployment IS NOT NULL ORDER BY deployment"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def known_request_ids(self, deployment: str, request_ids: list[str]) -> set[str]:
        """Those of ``request_ids`` the log holds for ``deployment`` (labels join on them)."""
        if not has_segments(self.folder):
            return set()
        with log_sql.connect(self.folder) as con:
            con.register("wanted", pd.DataFrame({"request_id": request_ids}))
            rows = con.execute(
                "SELECT DISTINCT p.request_id FROM predictions p "
                "JOIN wanted w ON p.request_id = w.request_id WHERE p.deployment = ?",
                [deployment],
            ).fetchall()
        return {r[0] for r in rows}

    def out_of_domain(
        self,
        *,
        model: str | None = None,
        since: Any = None,
        deployment: str | None = None,
        window_ms: tuple[int, int] | None = None,
    ) -> pd.DataFrame:
        """Values logged outside their model's input domain, counted by model, column and
        kind (``unseen_category``, ``out_of_range``, ``unexpected_null``; ``unknown`` for rows
        logged before kinds were kept), most first: what ``modelpilot logs domain`` shows.
        ``deployment`` counts its served rows only (a shadow's copies left out, as monitoring
        does), ``window_ms`` those in ``[start, end)`` (a monitoring report's window)."""
        columns = ["model", "column", "kind", "values"]
        if not has_segments(self.folder):
            return pd.DataFrame(columns=columns)
        where, params = _filters(model, deployment, since)
        where.append("out_of_domain_fields IS NOT NULL")
        if window_ms is not None:
            where.append("timestamp_ms >= ? AND timestamp_ms < ?")
            params += list(window_ms)
        with log_sql.connect(self.folder) as con:
            present = _columns(con)
            wanted = {"out_of_domain_fields"} | ({"deployment"} if deployment else set())
            if not wanted <= set(present):  # no domain logged (or no deployment's rows)
                return pd.DataFrame(columns=columns)
            if deployment is not None and "variant" in present:
                where.append("variant IS DISTINCT FROM 'shadow'")
            flagged = con.execute(
                "SELECT model, out_of_domain_fields, count(*) FROM predictions "
                f"WHERE {' AND '.join(where)} GROUP BY 1, 2",
                params,
            ).fetchall()
        counts: dict[tuple[str, str, str], int] = {}
        for name, text, rows in flagged:
            for column, kind in parse_domain_fields(text):
                key = (str(name), column, kind or "unknown")
                counts[key] = counts.get(key, 0) + int(rows)
        table = pd.DataFrame([(*k, n) for k, n in counts.items()], columns=columns)
        order = ["values", "model", "column", "kind"]
        return table.sort_values(order, ascending=[False, True, True, True], ignore_index=True)

    def query(self, sql: str) -> pd.DataFrame:
        """One read-only SELECT over the ``predictions`` view (``modelpilot logs query``); see
        :func:`modelpilot.predictions.sql.query` for what it refuses."""
        return log_sql.query(self.folder, sql)


def read_predictions(
    folder: Path, *, model: str | None = None, since: Any = None, deployment: str | None = None
) -> pd.DataFrame:
    """Logged predictions as a DataFrame, optionally for one model/deployment and after a time.

    ``since``: an ISO time, a datetime, or a duration back from now (``30m``, ``2h``, ``1d``).
    """
    return PredictionReader(folder).rows(model=model, deployment=deployment, since=since)


def _filters(model: str | None, deployment: str | None, since: Any) -> tuple[list[str], list[Any]]:
    """WHERE clauses and their parameters for the optional filters of the row readers."""
    clauses: list[str] = []
    params: list[Any] = []
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if deployment is not None:
        clauses.append("deployment = ?")
        params.append(deployment)
    if since is not None:
        clauses.append("timestamp_ms >= ?")
        params.append(since_ms(since))
    return clauses, params


def _columns(con: Any) -> list[str]:
    return [row[0] for row in con.execute("DESCRIBE predictions").fetchall()]


def _is_output(column: str) -> bool:
    return column == "out.prediction" or column.startswith("out.proba.")


def _score_column(columns: list[str]) -> str | None:
    """The positive-class probability if logged, else the raw prediction."""
    probas = sorted(c for c in columns if c.startswith("out.proba."))
    if probas:
        return probas[-1]
    return "out.prediction" if "out.prediction" in columns else None

"""Rollout evidence from the prediction log: requests, errors, p99 latency, a sample of
per-request latencies (for the latency guard's tail test), predictions.

A :class:`~modelpilot.release.rollout.StatsSource` over
:meth:`~modelpilot.predictions.PredictionReader.variant_stats`: the log's reader computes the
figures, this module only hands them to the controller in its own type.
"""

from __future__ import annotations

from pathlib import Path

from modelpilot.predictions import PredictionReader
from modelpilot.release.rollout import VariantStats


class PredictionLogStats:
    """A :class:`~modelpilot.release.rollout.StatsSource` over a prediction-log folder
    (``log_folder(home)``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def variant_stats(
        self, deployment: str, variant: str, since_ms: int, until_ms: int
    ) -> VariantStats:
        """Evidence for one variant of a deployment in ``[since_ms, until_ms)``."""
        logged = PredictionReader(self.folder).variant_stats(
            deployment, variant, since_ms, until_ms
        )
        return VariantStats(
            requests=logged.requests,
            errors=logged.errors,
            p99_latency_ms=logged.p99_latency_ms,
            p50_latency_ms=logged.p50_latency_ms,
            predictions=logged.predictions,
            latencies_ms=logged.latencies_ms,
        )

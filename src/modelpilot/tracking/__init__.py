"""Experiment tracking: experiments, runs, params, metrics, tags, run artifacts, environment.

Owns what happened in a training run; never serves models.
"""

from __future__ import annotations

from modelpilot.tracking.entities import DatasetInput, Experiment, MetricPoint, Run, RunStatus

__all__ = ["DatasetInput", "Experiment", "MetricPoint", "Run", "RunStatus"]

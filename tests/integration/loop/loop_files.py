"""Shared files and data of the loop tests: the training pipeline, its policy and gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modelpilot.pipelines import InlineExecutor, PipelineLauncher, PipelineServices
from modelpilot.pipelines.body import StepServices
from modelpilot.workspace import Workspace

PIPELINE = Path(__file__).with_name("loop_pipeline.py")
T0 = 1_800_000_000_000
GATE = (
    "metrics:\n  roc_auc: {min: 0.7}\nbaseline:\n  confidence: 0.9\n  max_drop: {roc_auc: 0.02}\n"
)
POLICY = """\
triggers:
  - manual: true
training:
  pipeline: loop_pipeline.py:retrain
  params: {{data: churn-train, flip: {flip}, fail: {fail}}}
evaluation: {{dataset: churn-test, target: churned, gate: gate.yaml}}
rollout:
  steps: [50, 100]
  min_requests_per_step: 40
  min_seconds_per_step: 0
require_approval: {approval}
"""


def churn_frame(seed: int, n: int = 400) -> pd.DataFrame:
    """Two features and a label that depends on both (a model on ``a`` alone is weak)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    return x.assign(churned=(x["a"] + 1.5 * x["b"] + rng.normal(0, 0.5, n)) > 0)


def inline_launcher(ws: Workspace) -> PipelineLauncher:
    """Runs a trigger's pipeline in this process (its steps log through ``ws``)."""
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    return PipelineLauncher(
        services,
        InlineExecutor(services=StepServices(ws.datasets, ws.registry), attach=ws.attached_run),
    )

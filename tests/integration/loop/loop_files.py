"""Shared files and data of the loop tests: the training pipelines, the policy and gate, a home
with a champion, and the in-process doubles (an inline launcher, scripted canary evidence)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.loop import load_loop_policy, set_loop_policy
from modelpilot.pipelines import InlineExecutor, PipelineLauncher, PipelineServices
from modelpilot.pipelines.body import StepServices
from modelpilot.release.rollout import VariantStats
from modelpilot.workspace import Workspace

PIPELINE = Path(__file__).with_name("loop_pipeline.py")
CRASH_PIPELINE = Path(__file__).with_name("crash_pipeline.py")
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


def seed_home(ws: Workspace, folder: Path) -> None:
    """A champion churn/1 that sees only a weak signal, deployed as churn-prod; training and
    test data; the pipeline files and the gate in ``folder``."""
    train = churn_frame(1)
    weak = LogisticRegression().fit(train[["a", "b"]].assign(b=0.0), train["churned"])
    ws.log_model(weak, "churn", input_example=train[["a", "b"]].head())
    ws.log_dataset(train, name="churn-train")
    ws.log_dataset(churn_frame(2), name="churn-test")
    release.create_deployment(ws.store, "churn-prod", "churn/1", actor="alice")
    for pipeline in (PIPELINE, CRASH_PIPELINE):
        shutil.copy(pipeline, folder / pipeline.name)
    (folder / "gate.yaml").write_text(GATE)


def inline_launcher(ws: Workspace) -> PipelineLauncher:
    """Runs a fired pipeline's steps in this process (the workspace's SDK logs them)."""
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    return PipelineLauncher(
        services,
        InlineExecutor(services=StepServices(ws.datasets, ws.registry), attach=ws.attached_run),
    )


class ScriptedStats:
    """Evidence per variant name, as the test sets it (the prediction log in production)."""

    def __init__(self) -> None:
        self.by_variant: dict[str, VariantStats] = {}

    def variant_stats(
        self, deployment: str, variant: str, since_ms: int, until_ms: int
    ) -> VariantStats:
        return self.by_variant.get(variant, VariantStats())


def set_policy(ws: Workspace, folder: Path, text: str, *, now_ms: int = T0) -> None:
    """Write ``text`` as ``folder/loop.yaml`` and make it churn-prod's policy."""
    (folder / "loop.yaml").write_text(text)
    set_loop_policy(
        ws.store, "churn-prod", load_loop_policy(folder / "loop.yaml"), actor="alice", now_ms=now_ms
    )


def installed_exe() -> str:
    """The installed ``modelpilot`` executable next to this interpreter (or on PATH)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("modelpilot", path=search)
    if found is None:
        pytest.fail(f"No `modelpilot` executable on {search}: pip install -e . first.")
    return found

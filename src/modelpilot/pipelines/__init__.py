"""Pipelines: plain Python functions as steps, composed into runs with lineage and a cache.

Owns steps (``@mp.step``), pipelines (``@mp.pipeline``, ``mp.Pipeline``), their graphs, the
step cache, the executors that run step attempts, and the pipeline-run and step-run records.
Never imports the SDK or the workspace: it takes the store and the tracking, dataset and
registry services it needs (:class:`~modelpilot.pipelines.engine.PipelineServices`).
Triggers, continuous-training policies and the agent build on the records kept here.
"""

from __future__ import annotations

from modelpilot.pipelines.engine import PipelineServices, run_pipeline
from modelpilot.pipelines.entities import PipelineRun, PipelineState, StepRun, StepState
from modelpilot.pipelines.executor import (
    Executor,
    InlineExecutor,
    StepOutcome,
    StepTask,
    SubprocessExecutor,
    check_executor_name,
    worker_environment,
)
from modelpilot.pipelines.graph import Pipeline, PipelineDef, PipelineFunction, pipeline
from modelpilot.pipelines.loader import load_target
from modelpilot.pipelines.params import params_from_text
from modelpilot.pipelines.records import get_pipeline_run, list_pipeline_runs
from modelpilot.pipelines.step import Step, step

__all__ = [
    "Executor",
    "InlineExecutor",
    "Pipeline",
    "PipelineDef",
    "PipelineFunction",
    "PipelineRun",
    "PipelineServices",
    "PipelineState",
    "Step",
    "StepOutcome",
    "StepRun",
    "StepState",
    "StepTask",
    "SubprocessExecutor",
    "check_executor_name",
    "get_pipeline_run",
    "list_pipeline_runs",
    "load_target",
    "params_from_text",
    "pipeline",
    "run_pipeline",
    "step",
    "worker_environment",
]

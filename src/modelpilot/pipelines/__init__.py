"""Pipelines: plain Python functions as steps, composed into runs with lineage and a cache.

Owns steps (``@mp.step``), pipelines (``@mp.pipeline``, ``mp.Pipeline``), their graphs, the
step cache, the executors that run step attempts, and the pipeline-run and step-run records.
Never imports the SDK or the workspace: it takes the store and the tracking, dataset and
registry services it needs (:class:`~modelpilot.pipelines.engine.PipelineServices`).
Triggers (schedule, new dataset version, alert, manual) and their firing records live
here too; continuous-training policies and the agent build on them.
"""

from __future__ import annotations

from modelpilot.pipelines.engine import PipelineServices, run_pipeline
from modelpilot.pipelines.entities import PipelineRun, PipelineState, StepRun, StepState
from modelpilot.pipelines.evaluator import PipelineLauncher, evaluate_triggers, fire_trigger
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
from modelpilot.pipelines.triggers import (
    Decision,
    Firing,
    Trigger,
    TriggerKind,
    define_trigger,
    delete_trigger,
    get_trigger,
    list_triggers,
    trigger_history,
)

__all__ = [
    "Decision",
    "Executor",
    "Firing",
    "InlineExecutor",
    "Pipeline",
    "PipelineDef",
    "PipelineFunction",
    "PipelineLauncher",
    "PipelineRun",
    "PipelineServices",
    "PipelineState",
    "Step",
    "StepOutcome",
    "StepRun",
    "StepState",
    "StepTask",
    "SubprocessExecutor",
    "Trigger",
    "TriggerKind",
    "check_executor_name",
    "define_trigger",
    "delete_trigger",
    "evaluate_triggers",
    "fire_trigger",
    "get_pipeline_run",
    "get_trigger",
    "list_pipeline_runs",
    "list_triggers",
    "load_target",
    "params_from_text",
    "pipeline",
    "run_pipeline",
    "step",
    "trigger_history",
    "worker_environment",
]

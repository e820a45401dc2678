"""modelpilot: self-hosted MLOps in one package. This module is the SDK.

>>> import modelpilot as mp
>>> mp.__version__
'0.1.0'

Typical use::

    with mp.start_run(experiment="churn") as run:
        mp.log_params({"max_depth": 6})
        mp.log_metric("auc", 0.91, step=3)
        train = mp.log_dataset(df_train, name="churn-train")
        mv = mp.log_model(model, name="churn", input_example=df_train.head(5), datasets=[train])
    mp.set_alias("churn", "champion", mv.version)
    model = mp.load_model("churn@champion")
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelpilot.errors import (
    Conflict,
    CorruptArtifact,
    InvalidInput,
    ModelFailed,
    ModelpilotError,
    NotFound,
    PipelineFailed,
    Unavailable,
    UnsafeModel,
)
from modelpilot.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from modelpilot.audit import AuditVerification
    from modelpilot.cards import DatasetCard, ModelCard
    from modelpilot.config import Settings
    from modelpilot.data import DatasetVersion
    from modelpilot.evaluation import EvaluationResult
    from modelpilot.lineage import Lineage
    from modelpilot.models import LoadedModel, Signature
    from modelpilot.monitoring import DriftReport
    from modelpilot.optimization import OptimizeResult
    from modelpilot.pipelines import (
        Pipeline,
        PipelineFunction,
        PipelineRun,
        StepRun,
        pipeline,
        step,
    )
    from modelpilot.registry import ModelVersion, RegisteredModel
    from modelpilot.registry.roles import DatasetsArg
    from modelpilot.release import Deployment, Revision, RolloutPolicy
    from modelpilot.tracking import MetricPoint, Run, RunStatus
    from modelpilot.tuning import TuneResult
    from modelpilot.workspace import ActiveRun, Workspace

# Names the SDK re-exports, imported on first use (PEP 562): ``import modelpilot`` and every
# ``modelpilot`` command start without pandas, SQLAlchemy and the rest until a call needs
# them (a CLI start-up went from ~0.9 s of imports to what the command itself uses).
_LAZY_NAMES: dict[str, str] = {
    "AuditVerification": "modelpilot.audit",
    "Settings": "modelpilot.config",
    "DatasetVersion": "modelpilot.data",
    "Lineage": "modelpilot.lineage",
    "LoadedModel": "modelpilot.models",
    "Signature": "modelpilot.models",
    "Pipeline": "modelpilot.pipelines",
    "PipelineRun": "modelpilot.pipelines",
    "StepRun": "modelpilot.pipelines",
    "pipeline": "modelpilot.pipelines",
    "step": "modelpilot.pipelines",
    "ModelVersion": "modelpilot.registry",
    "RegisteredModel": "modelpilot.registry",
    "Deployment": "modelpilot.release",
    "Revision": "modelpilot.release",
    "RolloutPolicy": "modelpilot.release",
    "MetricPoint": "modelpilot.tracking",
    "Run": "modelpilot.tracking",
    "RunStatus": "modelpilot.tracking",
    "ActiveRun": "modelpilot.workspace",
    "Workspace": "modelpilot.workspace",
}


def __getattr__(name: str) -> Any:
    """Import a re-exported name on first access (``mp.Workspace``, ``@mp.step``...)."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'modelpilot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


class _SdkModule(types.ModuleType):
    """This package's module object: importing the submodules ``modelpilot.workspace`` and
    ``modelpilot.lineage`` (now lazily, after the SDK's functions of the same names exist)
    must not replace ``mp.workspace()`` and ``mp.lineage()`` with the modules."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in {"workspace", "lineage"} and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


_active: Workspace | None = None
_active_lock = threading.Lock()


def init(
    home: str | Path | None = None,
    *,
    store_uri: str | None = None,
    artifact_root: str | Path | None = None,
    server: str | None = None,
    token: str | None = None,
) -> Workspace:
    """Choose where modelpilot keeps its data for this process; returns the new workspace.

    Without arguments, settings come from ``MODELPILOT_*`` environment variables and the
    default home ``~/.modelpilot``. ``server="http://host:5000"`` (with an API ``token``)
    sends the tracking calls to ``modelpilot server`` instead of a local store.
    """
    global _active
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = Path(home)
    if store_uri is not None:
        overrides["store_uri"] = store_uri
    if artifact_root is not None:
        overrides["artifact_root"] = Path(artifact_root)
    if server is not None:
        overrides["server_uri"] = server
    if token is not None:
        overrides["token"] = token
    with _active_lock:
        if _active is not None:
            _active.close()
        _active = _new_workspace(overrides)
        return _active


def _new_workspace(overrides: Mapping[str, Any]) -> Workspace:
    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    return Workspace(Settings(**overrides))


def workspace() -> Workspace:
    """The active workspace (created from the environment on first use)."""
    global _active
    if _active is None:
        with _active_lock:
            if _active is None:
                _active = _new_workspace({})
    return _active


def start_run(
    experiment: str = "Default",
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
) -> ActiveRun:
    """Start a run; use as ``with mp.start_run(experiment="churn") as run:``."""
    return workspace().start_run(experiment, name=name, tags=tags, nested=nested)


def end_run(status: RunStatus | str = "FINISHED") -> None:
    """End the active run (``status``: FINISHED, FAILED or KILLED)."""
    from modelpilot.tracking import RunStatus

    if status not in set(RunStatus):
        known = ", ".join(s.value for s in RunStatus)
        raise InvalidInput(f"unknown run status {status!r}; use one of {known}", field="status")
    workspace().end_run(RunStatus(status))


def active_run() -> ActiveRun | None:
    """The active run, if any."""
    return workspace().active_run()


def log_param(key: str, value: object) -> None:
    """Record one parameter of the active run."""
    workspace().log_params({key: value})


def log_params(params: Mapping[str, object]) -> None:
    """Record parameters of the active run (re-logging a different value is an error)."""
    workspace().log_params(params)


def set_tag(key: str, value: object) -> None:
    """Set one tag on the active run."""
    workspace().set_tags({key: value})


def set_tags(tags: Mapping[str, object]) -> None:
    """Set tags on the active run."""
    workspace().set_tags(tags)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point; ``step`` defaults to the next step of that metric."""
    workspace().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at one step."""
    workspace().log_metrics(metrics, step)


def log_batch(key: str, values: Sequence[float], steps: Sequence[int] | None = None) -> None:
    """Log many points of one metric at once."""
    workspace().log_batch(key, values, steps)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> dict[str, str]:
    """Store a file or folder as run artifacts; returns path -> digest."""
    return workspace().log_artifact(path, artifact_path)


def flush() -> None:
    """Commit buffered metric points now."""
    workspace().flush()


def get_run(run_id: str) -> Run:
    """A run: status, params, latest metrics, tags, datasets, artifacts."""
    return workspace().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[MetricPoint]:
    """Every point of a metric: value, step, timestamp."""
    return workspace().get_metric_history(run_id, key)


def search_runs(
    experiment: str | None = None,
    filter: str = "",
    order_by: Sequence[str] = (),
    max_results: int | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame, e.g. ``search_runs("churn", filter="metrics.auc > 0.9")``."""
    return workspace().search_runs(experiment, filter, order_by, max_results)


def log_dataset(
    data: pd.DataFrame | str | Path,
    name: str,
    *,
    role: str = "training",
    source: str | None = None,
    label: str | None = None,
    leakage_against: DatasetVersion | str | pd.DataFrame | None = None,
    label_issues: bool = False,
    seed: int = 0,
) -> DatasetVersion:
    """Version a dataset (content hash, schema, profile, data risks); linked to the active run.

    ``label`` names the label column (class balance), ``label_issues=True`` looks for likely
    label errors (cleanlab; ``pip install 'modelpilot[governance]'``), ``leakage_against``
    (a dataset or DataFrame) counts rows shared with the evaluation data. See
    docs/governance.md, "Data and model risks".
    """
    return workspace().log_dataset(
        data,
        name,
        role=role,
        source=source,
        label=label,
        leakage_against=leakage_against,
        label_issues=label_issues,
        seed=seed,
    )


def get_dataset(ref: str) -> DatasetVersion:
    """A dataset version: ``name@version`` or ``name`` (newest)."""
    return workspace().get_dataset(ref)


def load_dataset(ref: str) -> pd.DataFrame:
    """A dataset version's rows."""
    return workspace().load_dataset(ref)


def log_model(
    model: object,
    name: str,
    *,
    input_example: object = None,
    signature: Signature | None = None,
    datasets: DatasetsArg = (),
    description: str = "",
    tags: Mapping[str, str] | None = None,
    trusted_types: Sequence[str] = (),
) -> ModelVersion:
    """Package and register a model as the next version of ``name``.

    ``datasets=[train]`` links training data; ``datasets={"training": train, "test":
    holdout}`` names each dataset's role (training, validation, test, reference).
    ``trusted_types`` records, on the version, types in the saved file you vouch for, so
    every later load (serving included) accepts them without flags.
    """
    return workspace().log_model(
        model,
        name,
        input_example=input_example,
        signature=signature,
        datasets=datasets,
        description=description,
        tags=tags,
        trusted_types=trusted_types,
    )


def load_model(
    ref: str,
    *,
    trusted_types: Sequence[str] = (),
    allow_untrusted: bool = False,
    trusted_code: bool = False,
) -> LoadedModel:
    """Load ``churn@champion`` / ``churn/3`` / ``churn``; refuses untrusted types by default."""
    return workspace().load_model(
        ref,
        trusted_types=trusted_types,
        allow_untrusted=allow_untrusted,
        trusted_code=trusted_code,
    )


def score(
    ref: str,
    source: str | Path,
    output: str | Path,
    *,
    executor: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    chunk_rows: int = 100_000,
    workers: int | None = None,
    trusted_types: Sequence[str] = (),
    allow_untrusted: bool = False,
    trusted_code: bool = False,
) -> int:
    """Score a table file (.parquet, .csv, .tsv, .csv.gz or .tsv.gz) with ``churn@champion``
    into ``output`` (the input's columns, then ``prediction`` and ``proba_<class>``); returns
    the row count.

    ``executor="ray"`` runs it on Ray actors (the cluster at ``ray_address`` or
    ``MODELPILOT_RAY_ADDRESS``, else a local one) and writes the same output.
    """
    return workspace().score(
        ref,
        source,
        output,
        executor=executor,
        ray_address=ray_address,
        chunk_rows=chunk_rows,
        workers=workers,
        trusted_types=trusted_types,
        allow_untrusted=allow_untrusted,
        trusted_code=trusted_code,
    )


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    """Point ``alias`` (e.g. ``champion``) at a version, atomically."""
    return workspace().set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove an alias."""
    workspace().delete_alias(name, alias)


def get_model_version(ref: str) -> ModelVersion:
    """The registry record behind a reference."""
    return workspace().get_model_version(ref)


def list_models() -> list[RegisteredModel]:
    """Every registered model."""
    return workspace().list_models()


def tune(
    train_fn: Callable[..., Any],
    space: Mapping[str, Any],
    *,
    n_trials: int = 50,
    metric: str = "score",
    direction: Literal["maximize", "minimize"] = "maximize",
    experiment: str = "tuning",
    study_name: str | None = None,
    n_jobs: int = 1,
    seed: int = 0,
    executor: Literal["process", "ray"] = "process",
    ray_address: str | None = None,
) -> TuneResult:
    """Tune hyperparameters with Optuna; each trial is a child run (resumable by study name).

    ``n_jobs > 1`` runs trials in that many processes; ``executor="ray"`` runs each trial as
    a Ray task (``n_jobs`` at once) on the cluster at ``ray_address`` or
    ``MODELPILOT_RAY_ADDRESS``, else a local one, with the same child runs and resume.

    ``train_fn(params)`` returns the metric (or a dict holding it); ``train_fn(params, ctx)``
    may call ``ctx.report(value, step)`` so unpromising trials are pruned. Over
    ``modelpilot server`` the trials are runs on the server and the study's bookkeeping stays
    in a journal file in this machine's home.
    """
    return workspace().tune(
        train_fn,
        space,
        n_trials=n_trials,
        metric=metric,
        direction=direction,
        experiment=experiment,
        study_name=study_name,
        n_jobs=n_jobs,
        seed=seed,
        executor=executor,
        ray_address=ray_address,
    )


def model_card(ref: str) -> ModelCard:
    """The model card of a version (``.to_markdown()``, ``.to_html()``, ``.save(path)``)."""
    return workspace().cards.model_card(ref)


def update_model_card(ref: str, **fields: str) -> ModelCard:
    """Write person-authored fields (intended_use, limitations, …); kept on regeneration."""
    workspace().cards.update_card_fields(ref, fields)
    return model_card(ref)


def dataset_card(ref: str) -> DatasetCard:
    """The card of a dataset version: schema, profile, provenance, users."""
    return workspace().cards.dataset_card(ref)


def create_deployment(name: str, model: str, *, reason: str = "created") -> Deployment:
    """A deployment serving ``model`` (e.g. ``churn@champion``, resolved now) at 100%."""
    return workspace().deployments.create_deployment(name, model, reason=reason)


def canary(
    name: str, model: str, weight: int, *, policy: RolloutPolicy | None = None, reason: str = ""
) -> Deployment:
    """Send ``weight``% of traffic to ``model``; with a policy the controller rolls it out."""
    return workspace().deployments.set_canary(name, model, weight, policy=policy, reason=reason)


def shadow(name: str, model: str, *, reason: str = "") -> Deployment:
    """Mirror traffic to ``model``; its answers are logged and compared, never returned."""
    return workspace().deployments.set_shadow(name, model, reason=reason)


def ab_test(name: str, model: str, split: int, key: str, *, reason: str = "") -> Deployment:
    """A/B test ``model`` on ``split``% of traffic, sticky by the request field ``key``."""
    return workspace().deployments.set_ab(name, model, split, key, reason=reason)


def promote(name: str, *, reason: str = "") -> Deployment:
    """Make the canary/challenger of a deployment its stable version."""
    return workspace().deployments.promote(name, reason=reason)


def rollback(name: str, *, reason: str = "manual rollback") -> Deployment:
    """Return a deployment to its last stable configuration at once."""
    return workspace().deployments.rollback(name, reason=reason)


def get_deployment(name: str) -> Deployment:
    """A deployment's current revision."""
    return workspace().deployments.get_deployment(name)


def deployment_history(name: str) -> list[Revision]:
    """Every configuration a deployment ever had, newest first."""
    return workspace().deployments.history(name)


def read_predictions(
    model: str | None = None, *, since: object = None, deployment: str | None = None
) -> pd.DataFrame:
    """The prediction log as a DataFrame (``since``: an ISO time, a datetime, or a duration
    back from now such as ``30m``, ``2h``, ``1d``)."""
    from modelpilot.predictions import PredictionReader
    from modelpilot.predictions.bucket import log_bucket, pull_log

    settings = workspace().settings
    pull_log(settings.home, log_bucket(settings))
    reader = PredictionReader.of_home(settings.home)
    return reader.rows(model=model, deployment=deployment, since=since)


def evaluate(
    model: str,
    data: pd.DataFrame | str | DatasetVersion,
    *,
    target: str,
    baseline: str | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate a registered version (``"churn/4"``) on labelled data and store the result on it.

    Options: ``slices``, ``sensitive``, ``task``, ``n_bootstrap``, ``confidence``, ``seed``,
    ``robustness``, ``explain`` (see :func:`modelpilot.evaluation.evaluate`).
    """
    from modelpilot.assessment import evaluate_version

    return evaluate_version(workspace(), model, data, target, baseline=baseline, **options)


def optimize(
    model: str,
    to: str | Sequence[str] = ("onnx",),
    *,
    data: pd.DataFrame | str | DatasetVersion | None = None,
    holdout: pd.DataFrame | str | DatasetVersion | None = None,
    target: str | None = None,
    min_agreement: float = 0.999,
    max_abs_proba_diff: float = 0.001,
    student: str = "auto",
) -> OptimizeResult:
    """Optimised candidates of a registered version (``to=["onnx", "onnx-int8", "compiled"]``),
    each measured against it and registered as a new version with ``optimized_from`` lineage.

    ``data`` defaults to the version's training dataset, ``holdout`` to its test dataset;
    a candidate whose agreement or probability difference misses the bounds is registered
    marked ``fidelity: failed`` and can take no alias. ``to=["distilled"]`` trains a smaller
    student on the version's soft predictions (``student``: ``auto``, ``linear`` or ``hgb``).
    The result's ``to_frame()`` is the candidate table (docs/optimize.md).
    """
    from modelpilot.optimization import fidelity_rules, optimize_version

    ws = workspace()
    rules = fidelity_rules(min_agreement, max_abs_proba_diff)
    return optimize_version(
        ws.registry, ws.artifacts, ws.datasets, ws.load_model, model, to,
        data=data, holdout=holdout, target=target, rules=rules, student=student,
    )  # fmt: skip


def detect_drift(reference: Any, current: pd.DataFrame, **options: Any) -> DriftReport:
    """Drift of ``current`` against ``reference`` (a DataFrame or a fitted profile), per column
    and for the whole dataset; see :func:`modelpilot.monitoring.detect_drift` for options."""
    from modelpilot.monitoring import detect_drift as detect

    return detect(reference, current, **options)


def estimate_performance(
    reference: pd.DataFrame, analysis: pd.DataFrame, **options: Any
) -> pd.DataFrame:
    """Performance per chunk estimated without labels (CBPE for binary and multiclass
    classifiers, DLE for regressors), with bounds and alerts;
    see :func:`modelpilot.monitoring.estimate_performance` for options."""
    from modelpilot.monitoring import estimate_performance as estimate

    return estimate(reference, analysis, **options)


def log_labels(deployment: str, request_ids: Sequence[str], labels: Sequence[Any]) -> int:
    """Record ground truth for logged predictions (joined by request id); returns the count.

    Labels are stored next to the prediction log of this home (where the data plane logs);
    the deployment is checked with the deployment service (the server's, when one is set)."""
    from modelpilot.predictions.labels import log_labels as record

    ws = workspace()
    check = ws.deployments.get_deployment
    return record(ws.settings.home, deployment, request_ids, labels, check_deployment=check)


def run_pipeline(
    pipeline: Pipeline | PipelineFunction | str,
    params: Mapping[str, object] | None = None,
    *,
    executor: Literal["subprocess", "inline", "ray"] = "subprocess",
    experiment: str | None = None,
    on_step: Callable[[StepRun], None] | None = None,
    ray_address: str | None = None,
) -> PipelineRun:
    """Run a pipeline (an ``@mp.pipeline`` function, an ``mp.Pipeline`` or ``"train.py:name"``).

    Each step runs in a fresh process (``executor="inline"``: in this one, for debugging;
    ``executor="ray"``: as a Ray task, on the cluster at ``ray_address`` or
    ``MODELPILOT_RAY_ADDRESS``, else a local one) as a child run of the pipeline's run; a
    step whose code and input contents are unchanged since a successful run is skipped and
    its output reused. A failed step raises :class:`PipelineFailed` naming it, its error and
    its log tail (the run is kept, FAILED). ``on_step`` is called with each step run as its
    state changes.
    """
    from modelpilot.pipelines import (
        Executor,
        InlineExecutor,
        PipelineServices,
        SubprocessExecutor,
        check_executor_name,
        load_target,
        worker_environment,
    )
    from modelpilot.pipelines import run_pipeline as run
    from modelpilot.pipelines.body import StepServices
    from modelpilot.pipelines.graph import describe_target
    from modelpilot.pipelines.ray_executor import RayExecutor

    ws = workspace()
    definition = load_target(pipeline) if isinstance(pipeline, str) else pipeline
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    name = check_executor_name(executor)
    env = worker_environment(ws.settings)
    runner: Executor
    if name == "ray":
        runner = RayExecutor(env=env, address=ray_address or ws.settings.ray_address)
    elif name == "subprocess":
        runner = SubprocessExecutor(env=env)
    else:
        runner = InlineExecutor(
            services=StepServices(ws.datasets, ws.registry), attach=ws.attached_run
        )
    return run(
        definition,
        params or {},
        services=services,
        executor=runner,
        target=pipeline if isinstance(pipeline, str) else describe_target(definition),
        experiment=experiment,
        on_step=on_step,
    )


def get_pipeline_run(run_id: str) -> PipelineRun:
    """A pipeline run with its steps' states, attempts, durations, outputs and errors (by id
    or a unique id prefix)."""
    from modelpilot.pipelines import get_pipeline_run as get

    return get(workspace().store, run_id)


def lineage(ref: str) -> Lineage:
    """version -> run -> datasets -> code revision."""
    return workspace().lineage(ref)


def verify_audit(*, expected_head: str | None = None) -> AuditVerification:
    """Check the audit log's hash chain: ``.ok``, or the first bad entry and what happened.

    ``expected_head``: a head hash kept from an earlier check, to detect the newest entries
    being deleted. The CLI form is ``modelpilot audit verify`` (exit code 10 when broken).
    With a server configured, the server's log is verified (an admin token).
    """
    return workspace().audit.verify(expected_head=expected_head)


__all__ = [
    "ActiveRun",
    "Conflict",
    "CorruptArtifact",
    "DatasetVersion",
    "Deployment",
    "InvalidInput",
    "Lineage",
    "LoadedModel",
    "MetricPoint",
    "ModelFailed",
    "ModelVersion",
    "ModelpilotError",
    "NotFound",
    "Pipeline",
    "PipelineFailed",
    "PipelineRun",
    "RegisteredModel",
    "RolloutPolicy",
    "Run",
    "RunStatus",
    "Settings",
    "Signature",
    "StepRun",
    "Unavailable",
    "UnsafeModel",
    "Workspace",
    "__version__",
    "ab_test",
    "active_run",
    "canary",
    "create_deployment",
    "dataset_card",
    "delete_alias",
    "deployment_history",
    "detect_drift",
    "end_run",
    "estimate_performance",
    "evaluate",
    "flush",
    "get_dataset",
    "get_deployment",
    "get_metric_history",
    "get_model_version",
    "get_pipeline_run",
    "get_run",
    "init",
    "lineage",
    "list_models",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_batch",
    "log_dataset",
    "log_labels",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "model_card",
    "optimize",
    "pipeline",
    "promote",
    "read_predictions",
    "rollback",
    "run_pipeline",
    "score",
    "search_runs",
    "set_alias",
    "set_tag",
    "set_tags",
    "shadow",
    "start_run",
    "step",
    "tune",
    "update_model_card",
    "verify_audit",
    "workspace",
]

sys.modules[__name__].__class__ = _SdkModule

"""``tune``: run an Optuna study whose trials are child runs of one parent run.

The study lives in modelpilot's own database (Optuna's RDB storage on the same URL), so a
crashed tuning job is resumed by calling ``tune`` again with the same ``study_name``: trials
left RUNNING by the dead process are marked FAIL and the study continues until it has
``n_trials`` completed trials. Parallel workers are separate processes sharing the storage.

A study's identity includes its search space and objective: the default name carries a short
hash of both, and the space is stored in the study, so a changed space never silently resumes
an old study (whose best parameters would not be in the new space).

Tuning receives the narrow things it needs: :class:`TrialRuns` (child runs, their params,
metrics and tags: the SDK's workspace, local or over ``modelpilot server``) and a
:class:`~modelpilot.tuning.storage.StudyStorage` (where Optuna keeps the study).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import multiprocessing
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import optuna
import pandas as pd

from modelpilot.errors import InvalidInput
from modelpilot.tracking.protocol import TrackingService
from modelpilot.tuning.space import to_distributions
from modelpilot.tuning.storage import StudyStorage, close_storage

TrainFn = Callable[..., float | Mapping[str, float]]
Executor = Literal["process", "ray"]

_log = logging.getLogger(__name__)


class TrialRun(Protocol):
    """A run in progress that ends (FINISHED, or FAILED on an exception) when its block ends."""

    @property
    def id(self) -> str:
        """The run's id."""

    def __enter__(self) -> TrialRun: ...

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...


class TrialRuns(Protocol):
    """What tuning needs to record trials: child runs that become the active run (so the
    train function's own ``mp.log_metric`` calls land on its trial), their params, metrics and
    tags, and the tracking service for tags on finished runs. The SDK's workspace is one."""

    @property
    def tracking(self) -> TrackingService:
        """The tracking service the runs live in."""

    def start_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> TrialRun:
        """Start a run (a child of ``parent_run_id``) and make it the active one."""

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record parameters of the active run."""

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set tags on the active run."""

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Log one point on the active run."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics on the active run."""

    def close(self) -> None:
        """Flush and release connections."""


class TrialContext:
    """Handed to a two-argument train function: report intermediate values, learn of pruning."""

    def __init__(self, trial: optuna.Trial, runs: TrialRuns, metric: str) -> None:
        self.trial = trial
        self.runs = runs
        self.metric = metric

    @property
    def number(self) -> int:
        """The trial's number in the study."""
        return int(self.trial.number)

    def report(self, value: float, step: int) -> None:
        """Log ``metric`` at ``step`` and raise ``optuna.TrialPruned`` if the pruner says so."""
        self.runs.log_metric(self.metric, value, step=step)
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")


@dataclass(frozen=True)
class TuneResult:
    """The outcome: best params and value, the best child run, and every trial."""

    study_name: str
    parent_run_id: str
    best_params: dict[str, Any]
    best_value: float
    best_run_id: str
    trials: pd.DataFrame
    resumed_trials: int = 0  # completed trials found in the study before this call


def tune(
    runs: TrialRuns,
    train_fn: TrainFn,
    space: Mapping[str, Any],
    *,
    storage: StudyStorage,
    new_runs: Callable[[], TrialRuns] | None = None,
    n_trials: int = 50,
    metric: str = "score",
    direction: Literal["maximize", "minimize"] = "maximize",
    experiment: str = "tuning",
    study_name: str | None = None,
    n_jobs: int = 1,
    pruner: optuna.pruners.BasePruner | None = None,
    seed: int = 0,
    executor: Executor = "process",
    ray_address: str | None = None,
) -> TuneResult:
    """Tune ``train_fn(params)`` (or ``train_fn(params, ctx)`` for pruning) over ``space``.

    Trials are recorded through ``runs``; with ``n_jobs > 1`` each worker process records
    through its own ``new_runs()`` (a picklable factory). ``storage`` keeps the study.
    ``executor="ray"`` runs each trial as a Ray task (``n_jobs`` at once) on the cluster at
    ``ray_address`` (else a local one), recording the same way (:mod:`.ray_trials`)."""
    if n_trials < 1:
        raise InvalidInput(f"n_trials must be at least 1; got {n_trials}.", field="n_trials")
    if direction not in ("maximize", "minimize"):
        raise InvalidInput(
            f"direction must be 'maximize' or 'minimize'; got {direction!r}.", field="direction"
        )
    if executor not in ("process", "ray"):
        raise InvalidInput(
            f"Unknown executor {executor!r}; use 'process' (worker processes on this machine) "
            "or 'ray' (a Ray task per trial).",
            field="executor",
        )
    if (n_jobs > 1 or executor == "ray") and new_runs is None:
        raise InvalidInput(
            f"n_jobs={n_jobs} runs trials in worker processes, which need new_runs (a picklable "
            "factory of their runs); pass it, or use n_jobs=1.",
            field="n_jobs",
        )
    distributions = to_distributions(space)
    name = study_name or default_study_name(experiment, metric, distributions, train_fn)
    opened = storage.open()
    try:
        return _tune_with(
            _Session(runs, storage, new_runs, executor, ray_address),
            opened,
            train_fn,
            distributions,
            n_trials,
            metric,
            direction,
            experiment,
            name,
            n_jobs,
            pruner,
            seed,
        )
    finally:
        close_storage(opened)


@dataclass(frozen=True)
class _Session:
    runs: TrialRuns
    storage: StudyStorage
    new_runs: Callable[[], TrialRuns] | None
    executor: Executor = "process"
    ray_address: str | None = None


def _tune_with(
    session: _Session,
    storage: optuna.storages.BaseStorage,
    train_fn: TrainFn,
    distributions: dict[str, Any],
    n_trials: int,
    metric: str,
    direction: str,
    experiment: str,
    name: str,
    n_jobs: int,
    pruner: optuna.pruners.BasePruner | None,
    seed: int,
) -> TuneResult:
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=direction,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner or optuna.pruners.MedianPruner(),
    )
    _check_identity(study, name, distributions, train_fn)
    _fail_abandoned_trials(study)
    parent_id = _parent_run(session.runs, study, experiment, name)
    resumed = _completed(study)
    if resumed:
        _log.info(
            "Resuming study %r: %d completed trial(s) found, %d more to run.",
            name,
            resumed,
            max(n_trials - resumed, 0),
        )
    remaining = n_trials - resumed
    if remaining > 0:
        job = _Job(
            session.storage,
            session.new_runs,
            train_fn,
            distributions,
            metric,
            experiment,
            parent_id,
            name,
            seed,
        )
        if session.executor == "ray":
            from modelpilot.tuning.ray_trials import run_on_ray

            run_on_ray(job, remaining, n_jobs, address=session.ray_address, worker=_worker)
        elif n_jobs <= 1:
            job.run(session.runs, storage, remaining)
        else:
            _run_in_processes(job, remaining, n_jobs)
    result = _summarise(
        session.runs, optuna.load_study(study_name=name, storage=storage), parent_id, metric, name
    )
    return dataclasses.replace(result, resumed_trials=resumed)


def default_study_name(
    experiment: str, metric: str, distributions: Mapping[str, Any], train_fn: object
) -> str:
    """``{experiment}-{metric}-{hash}``: the hash covers the normalised space and the train
    function's qualified name, so tuning another space or function starts another study.

    >>> from modelpilot.tuning.space import to_distributions
    >>> def train(params): return 0.0
    >>> a = default_study_name("tuning", "auc", to_distributions({"x": (0, 9)}), train)
    >>> b = default_study_name("tuning", "auc", to_distributions({"y": (0, 9)}), train)
    >>> a.startswith("tuning-auc-"), a == b
    (True, False)
    """
    identity = json.dumps([_space_doc(distributions), _objective_name(train_fn)])
    return f"{experiment}-{metric}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def _space_doc(distributions: Mapping[str, Any]) -> dict[str, str]:
    """The space in Optuna's own JSON form, sorted by name (so key order does not matter)."""
    return {
        name: optuna.distributions.distribution_to_json(distributions[name])
        for name in sorted(distributions)
    }


def _objective_name(train_fn: object) -> str:
    module = getattr(train_fn, "__module__", None) or type(train_fn).__module__
    qualname = getattr(train_fn, "__qualname__", None) or type(train_fn).__qualname__
    return f"{module}.{qualname}"


def _check_identity(
    study: optuna.Study, name: str, distributions: Mapping[str, Any], train_fn: object
) -> None:
    """Store the space in a new study; refuse to resume a study over a different space."""
    space = _space_doc(distributions)
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
        study.set_user_attr("objective", _objective_name(train_fn))
        return
    if stored != space:
        raise InvalidInput(
            f"Study {name!r} was tuned over a different search space ({_space_diff(stored, space)})"
            ". Its trials cannot answer the new space: pass another study_name, or leave "
            "study_name out to get one derived from the space.",
            field="space",
        )
    if study.user_attrs.get("objective") != _objective_name(train_fn):
        _log.info(
            "Study %r was tuned with %s; continuing it with %s.",
            name,
            study.user_attrs.get("objective"),
            _objective_name(train_fn),
        )


def _space_diff(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    def shown(doc: str) -> str:
        return repr(optuna.distributions.json_to_distribution(doc))

    parts = [
        f"{n}: {shown(old[n])} -> {shown(new[n])}" for n in old if n in new and old[n] != new[n]
    ]
    parts += [f"no longer has {n}" for n in old if n not in new]
    parts += [f"new parameter {n}" for n in new if n not in old]
    return "; ".join(parts)


class _Job:
    """What each worker process needs; picklable when ``train_fn`` is importable."""

    def __init__(
        self,
        storage: StudyStorage,
        new_runs: Callable[[], TrialRuns] | None,
        train_fn: TrainFn,
        distributions: dict[str, Any],
        metric: str,
        experiment: str,
        parent_id: str,
        study_name: str,
        seed: int,
    ) -> None:
        self.storage = storage
        self.new_runs = new_runs
        self.train_fn = train_fn
        self.distributions = distributions
        self.metric = metric
        self.experiment = experiment
        self.parent_id = parent_id
        self.study_name = study_name
        self.seed = seed
        self.wants_context = len(inspect.signature(train_fn).parameters) >= 2

    def run(
        self,
        runs: TrialRuns,
        storage: optuna.storages.BaseStorage,
        n_trials: int,
        seed_offset: int = 0,
    ) -> None:
        """Run ``n_trials`` more trials of the study in this process (``seed_offset`` keeps
        concurrent workers' samplers apart)."""
        study = optuna.load_study(
            study_name=self.study_name,
            storage=storage,
            sampler=optuna.samplers.TPESampler(seed=self.seed + n_trials + seed_offset),
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(
            lambda trial: self._objective(runs, trial),
            n_trials=n_trials,
            catch=(),
            gc_after_trial=False,
        )

    def _objective(self, runs: TrialRuns, trial: optuna.Trial) -> float:
        params = {name: trial._suggest(name, dist) for name, dist in self.distributions.items()}
        with runs.start_run(
            self.experiment,
            name=f"{self.study_name}-trial-{trial.number}",
            parent_run_id=self.parent_id,
            tags={"tuning.study": self.study_name, "tuning.trial": str(trial.number)},
        ) as run:
            trial.set_user_attr("run_id", run.id)
            runs.log_params(params)
            try:
                result = (
                    self.train_fn(params, TrialContext(trial, runs, self.metric))
                    if self.wants_context
                    else self.train_fn(params)
                )
            except optuna.TrialPruned:
                runs.set_tags({"tuning.state": "pruned"})
                raise
            value = _objective_value(result, self.metric)
            metrics = dict(result) if isinstance(result, Mapping) else {self.metric: value}
            runs.log_metrics({k: float(v) for k, v in metrics.items()}, step=None)
            runs.set_tags({"tuning.state": "complete"})
        return value


def _objective_value(result: object, metric: str) -> float:
    if isinstance(result, Mapping):
        if metric not in result:
            raise InvalidInput(
                f"The train function returned metrics {sorted(result)} but not {metric!r}, the one "
                "being tuned.",
                field="metric",
            )
        return float(result[metric])
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        return float(result)
    raise InvalidInput(
        "The train function must return a number or a dict of metrics; got "
        f"{type(result).__name__}.",
        field="train_fn",
    )


def _worker(job: _Job, n_trials: int, seed_offset: int = 0) -> None:
    assert job.new_runs is not None  # tune() refused n_jobs > 1 and Ray without it
    # the study first: on a Ray node without the store's SQLite file it refuses, where a
    # workspace would create an empty store there
    storage = job.storage.open()
    try:
        runs = job.new_runs()
        try:
            job.run(runs, storage, n_trials, seed_offset)
        finally:
            runs.close()
    finally:
        close_storage(storage)


def _run_in_processes(job: _Job, remaining: int, n_jobs: int) -> None:
    shares = [remaining // n_jobs + (1 if i < remaining % n_jobs else 0) for i in range(n_jobs)]
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies (killed, a crash while
    # unpickling the job) breaks the executor with an error, where Pool waits for it forever.
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(n_jobs, mp_context=context) as pool:
            futures = [pool.submit(_worker, job, share) for share in shares if share]
            for future in futures:
                future.result()
    except (AttributeError, TypeError, pickle.PicklingError) as exc:  # the train function
        raise InvalidInput(
            f"Cannot run trials in parallel processes: {exc}. Define the train function at the top "
            "level of an importable module, or use n_jobs=1.",
            field="train_fn",
        ) from exc
    except BrokenProcessPool as exc:
        raise RuntimeError(
            "A tuning worker process died before finishing its trials (killed, or out of "
            "memory); the completed trials are kept in the study: run tune() again to resume."
        ) from exc


def _fail_abandoned_trials(study: optuna.Study) -> None:
    """Trials RUNNING at start-up belong to a dead process; mark them FAIL so numbering goes on."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def _completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def _parent_run(runs: TrialRuns, study: optuna.Study, experiment: str, name: str) -> str:
    existing = study.user_attrs.get("parent_run_id")
    if existing:
        return str(existing)
    with runs.start_run(experiment, name=f"{name}-study", tags={"tuning.study": name}) as parent:
        pass
    study.set_user_attr("parent_run_id", parent.id)
    return parent.id


def _summarise(
    runs: TrialRuns, study: optuna.Study, parent_id: str, metric: str, name: str
) -> TuneResult:
    if _completed(study) == 0:
        states = pd.Series([t.state.name for t in study.get_trials(deepcopy=False)]).value_counts()
        raise InvalidInput(
            f"Study {name!r} has no completed trial ({dict(states)}); widen the search space or "
            "relax the pruner.",
            field="n_trials",
        )
    best = study.best_trial
    best_run = str(best.user_attrs["run_id"])
    runs.tracking.set_tags(best_run, {"tuning.best": "true"})
    runs.tracking.set_tags(
        parent_id,
        {"tuning.best_run": best_run, "tuning.best_value": repr(best.value)},
    )
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state", "user_attrs"))
    return TuneResult(name, parent_id, dict(best.params), float(best.value or 0.0), best_run, frame)

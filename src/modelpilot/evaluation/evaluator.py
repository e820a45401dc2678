"""``evaluate``: one call from a model and a labelled DataFrame to an :class:`EvaluationResult`.

It validates the inputs once, predicts once per model, then runs each section on those
predictions. Randomness enters only through ``seed``: the same call gives the same result.

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=300)})
>>> df["y"] = 2 * df["x"] + rng.normal(size=300)
>>> r = evaluate(LinearRegression().fit(df[["x"]], df["y"]), df, "y", n_bootstrap=100,
...              robustness=False, explain=False)
>>> r.task, round(r.metrics["rmse"].value, 2)
('regression', 0.97)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import InvalidInput, shown
from modelpilot.evaluation.adversarial import DEFAULT_BUDGET, check_budget, evaluate_adversarial
from modelpilot.evaluation.bootstrap import MetricValue, run_bootstrap, seed_for, to_metric_value
from modelpilot.evaluation.calibration import evaluate_calibration
from modelpilot.evaluation.comparison import (
    Comparison,
    baseline_key,
    differences,
    model_key,
)
from modelpilot.evaluation.explanations import explain as run_explanations
from modelpilot.evaluation.fairness import check_attribute, evaluate_fairness
from modelpilot.evaluation.membership import evaluate_membership
from modelpilot.evaluation.metrics import MetricSpec, metrics_for, primary_metric
from modelpilot.evaluation.prediction import (
    TASKS,
    Predictions,
    Task,
    feature_columns,
    infer_task,
    model_kind,
    one_line,
    predict,
)
from modelpilot.evaluation.result import EvaluationResult
from modelpilot.evaluation.robustness import evaluate_robustness
from modelpilot.evaluation.slices import evaluate_slices


def evaluate(
    model: object,
    data: pd.DataFrame,
    target: str,
    *,
    slices: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    baseline: object | None = None,
    task: Task | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    min_slice_size: int = 50,
    n_bins: int = 10,
    robustness: bool = True,
    explain: bool = True,
    model_name: str = "model",
    baseline_name: str = "baseline",
    shap: bool = False,
    adversarial: bool = False,
    adversarial_budget: float = DEFAULT_BUDGET,
    membership: bool = False,
    train_data: pd.DataFrame | None = None,
) -> EvaluationResult:
    """Evaluate ``model`` on ``data`` against the labels in column ``target``.

    ``model`` and ``baseline`` are any objects with ``predict(DataFrame)`` and, optionally,
    ``predict_proba`` (scikit-learn estimators and pipelines, xgboost and LightGBM wrappers).
    Features are the model's ``feature_names_in_`` when it has them, else every column but the
    target, slice and sensitive columns. The task is inferred from the model and the target
    unless ``task`` is given. With a ``baseline`` both are scored on the same bootstrap
    resamples, so :attr:`EvaluationResult.comparison` holds paired differences that promotion
    gates read. Set ``n_bootstrap=0`` to skip intervals, ``robustness``/``explain`` to False
    to skip those sections (they re-run the model).

    Opt-in risk sections (docs/governance.md): ``shap=True`` adds SHAP values through the
    shap package (TreeSHAP for tree models, a model-agnostic explainer otherwise);
    ``adversarial=True`` searches each of 200 rows for the smallest in-range perturbation
    that flips its class and reports the share flipped within ``adversarial_budget`` (a share
    of each feature's range); ``membership=True`` runs a loss-threshold membership-inference
    attack on ``train_data`` (the model's training rows, with the target) against ``data``.

    >>> import numpy as np, pandas as pd
    >>> from sklearn.dummy import DummyClassifier
    >>> df = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100) % 2})
    >>> r = evaluate(DummyClassifier().fit(df[["x"]], df["y"]), df, "y", n_bootstrap=0,
    ...              robustness=False, explain=False)
    >>> r.metrics["roc_auc"].value, r.metrics["accuracy"].value
    (0.5, 0.5)
    """
    _check_options(data, target, slices, sensitive, task, n_bootstrap, confidence)
    _check_risk_options(data, target, adversarial_budget, membership, train_data)
    for attribute in sensitive:
        check_attribute(data[attribute], attribute)
    run = _prepare(model, data, target, [*slices, *sensitive], baseline, task)
    boot: dict[str, Any] = {"n_bootstrap": n_bootstrap, "confidence": confidence, "seed": seed}
    draws = run_bootstrap(
        run.preds.n, _statistics(run), n_bootstrap=n_bootstrap, seed=seed_for(seed)
    )
    metrics = {s.name: to_metric_value(model_key(s.name), draws, confidence) for s in run.specs}
    for preds in (run.preds, run.base):
        if preds is not None:
            preds.memo.pop("weights", None)  # the last resample chunk's sums: large, done with
    slice_results, slice_diffs = evaluate_slices(
        data,
        slices,
        run.preds,
        run.base,
        run.specs,
        run.shared,
        min_slice_size=min_slice_size,
        **boot,
    )
    comparison = None
    if run.base is not None:
        overall = differences(draws, run.shared, confidence=confidence)
        comparison = Comparison({d.metric: d for d in overall}, slice_diffs)
    explanations = None
    if explain or shap:
        explanations = run_explanations(
            model,
            run.features,
            run.y,
            run.task,
            run.primary,
            seed=seed,
            notes=run.notes,
            use_shap=shap,
        )
    scenarios = []
    if robustness:
        scenarios = evaluate_robustness(
            model,
            run.features,
            run.y,
            run.task,
            run.preds,
            run.specs,
            run.primary,
            seed=seed,
            notes=run.notes,
        )
    attack = None
    if adversarial:
        attack = evaluate_adversarial(
            model,
            run.features,
            run.y,
            run.task,
            seed=seed,
            notes=run.notes,
            budget=adversarial_budget,
        )
    leak = None
    if membership and train_data is not None:
        missing = [str(c) for c in run.features.columns if c not in train_data.columns]
        if missing:
            raise InvalidInput(
                f"train_data lacks the model's feature column(s) {shown(missing)}. Pass the "
                "rows the model was trained on, with the same columns as the evaluation data.",
                field="train_data",
            )
        leak = evaluate_membership(
            model,
            train_data[list(run.features.columns)],
            train_data[target],
            run.features,
            run.y,
            run.task,
            seed=seed,
            notes=run.notes,
        )
    return EvaluationResult(
        task=run.task,
        target=target,
        n_rows=len(data),
        features=list(run.features.columns),
        classes=list(run.preds.classes),
        primary_metric=run.primary,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
        metrics=metrics,
        slices=slice_results,
        calibration=evaluate_calibration(run.preds, n_bins=n_bins, **boot),
        fairness=evaluate_fairness(data, sensitive, run.preds, run.specs, **boot),
        robustness=scenarios,
        explanations=explanations,
        comparison=comparison,
        warnings=_warnings(metrics, slice_results, run.preds, n_bootstrap),
        notes=run.notes + (explanations.notes if explanations else []),
        model_name=model_name,
        baseline_name=baseline_name if baseline is not None else None,
        adversarial=attack,
        membership=leak,
    )


@dataclass(frozen=True)
class _Run:
    """Validated inputs and each model's predictions, shared by every section."""

    y: pd.Series
    features: pd.DataFrame
    task: Task
    preds: Predictions
    base: Predictions | None
    specs: list[MetricSpec]  # every metric the model supports
    shared: list[MetricSpec]  # the metrics both the model and the baseline support
    primary: str
    notes: list[str]


def _prepare(
    model: object,
    data: pd.DataFrame,
    target: str,
    grouping: list[str],
    baseline: object | None,
    task: Task | None,
) -> _Run:
    y = data[target]
    _check_target(y, target)
    exclude = [target, *grouping]
    features = data[feature_columns(model, data, exclude)]
    chosen: Task = task if task is not None else infer_task(y, model)
    notes: list[str] = []
    preds = _predict(model, features, y, chosen, notes, "model")
    base = None
    if baseline is not None:
        _check_baseline(baseline, model, y, chosen, task)
        base_features = data[feature_columns(baseline, data, exclude)]
        base = _predict(baseline, base_features, y, chosen, notes, "baseline")
        _check_same_classes(preds, base)
    specs = metrics_for(chosen, preds.proba is not None)
    shared = [] if base is None else metrics_for(chosen, base.proba is not None)
    shared = [s for s in shared if s in specs]
    primary = primary_metric(chosen, preds.proba is not None)
    return _Run(y, features, chosen, preds, base, specs, shared, primary, notes)


def _statistics(run: _Run) -> dict[Any, Any]:
    stats: dict[Any, Any] = {model_key(s.name): _bind(s, run.preds) for s in run.specs}
    if run.base is not None:
        stats.update({baseline_key(s.name): _bind(s, run.base) for s in run.shared})
    return stats


def _bind(spec: MetricSpec, preds: Predictions) -> Any:
    return lambda w: spec.fn(preds, w)


def _predict(
    model: object, features: pd.DataFrame, y: pd.Series, task: Task, notes: list[str], role: str
) -> Predictions:
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(
            f"The {role} must have a predict(DataFrame) method; got {type(model).__name__}. "
            "Pass a fitted estimator (scikit-learn, xgboost, LightGBM) or a wrapper with predict.",
            field=role,
        )
    try:
        return predict(model, features, y, task, notes=notes, role=role)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"{role}.predict failed on the evaluation features {shown(list(features.columns))}: "
            f"{type(exc).__name__}: {one_line(exc)}. Check that the data has the columns and "
            "types the model was trained on.",
            field=role,
        ) from exc


def _check_options(
    data: object,
    target: str,
    slices: Sequence[str],
    sensitive: Sequence[str],
    task: str | None,
    n_bootstrap: int,
    confidence: float,
) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"evaluate() needs a pandas DataFrame as data; got {type(data).__name__}. "
            "Wrap it: pd.DataFrame(...).",
            field="data",
        )
    if data.empty:
        raise InvalidInput("The evaluation data has no rows. Pass labelled rows.", field="data")
    columns = list(map(str, data.columns))
    if target not in data.columns:
        raise InvalidInput(
            f"Target column '{target}' is not in the evaluation data; columns: {shown(columns)}. "
            "Pass target= the label column's name.",
            field="target",
        )
    for role, names in (("slice", slices), ("sensitive", sensitive)):
        if isinstance(names, str):
            raise InvalidInput(
                f"{role} columns must be a list of names; got the string {shown(names)}. "
                f"Pass {role}{'s' if role == 'slice' else ''}=[{names!r}].",
                field=role,
            )
        for name in names:
            if name not in data.columns:
                raise InvalidInput(
                    f"{role.capitalize()} column '{name}' is not in the evaluation data; "
                    f"columns: {shown(columns)}. Pass existing column names.",
                    field=role,
                )
            if name == target:
                raise InvalidInput(
                    f"The target '{target}' cannot also be a {role} column. Remove it.",
                    field=role,
                )
    if task is not None and task not in TASKS:
        raise InvalidInput(
            f"Unknown task {shown(task)}; expected one of {', '.join(TASKS)} (or None to infer).",
            field="task",
        )
    if not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise InvalidInput(
            f"n_bootstrap must be an integer ≥ 0; got {shown(n_bootstrap)}. Use 0 to skip "
            "intervals, 1000 for gates.",
            field="n_bootstrap",
        )
    if not 0.0 < confidence < 1.0:
        raise InvalidInput(
            f"confidence must be between 0 and 1 (exclusive); got {shown(confidence)}. "
            "Use e.g. 0.95.",
            field="confidence",
        )


def _check_risk_options(
    data: pd.DataFrame,
    target: str,
    budget: object,
    membership: bool,
    train_data: object,
) -> None:
    check_budget(budget)
    if not membership:
        return
    if train_data is None:
        raise InvalidInput(
            "membership=True needs the model's training rows: pass train_data=<DataFrame "
            "with the features and the target> (mp.evaluate finds a registered version's "
            "training dataset itself).",
            field="train_data",
        )
    if not isinstance(train_data, pd.DataFrame) or train_data.empty:
        raise InvalidInput(
            f"train_data must be a non-empty DataFrame; got {type(train_data).__name__}"
            f"{' with no rows' if isinstance(train_data, pd.DataFrame) else ''}.",
            field="train_data",
        )
    if target not in train_data.columns:
        raise InvalidInput(
            f"train_data lacks the target column '{target}'; it has "
            f"{shown(list(map(str, train_data.columns)))}.",
            field="train_data",
        )


def _check_target(y: pd.Series, target: str) -> None:
    missing = np.flatnonzero(y.isna().to_numpy())
    if missing.size:
        raise InvalidInput(
            f"Target column '{target}' has {missing.size} missing labels (first at row "
            f"{int(missing[0])}). Drop or fill unlabelled rows before evaluating.",
            field="target",
        )


def _check_baseline(
    baseline: object, model: object, y: pd.Series, chosen: Task, given: Task | None
) -> None:
    kinds = {model_kind(model), model_kind(baseline)}
    if {"classifier", "regressor"} <= kinds:
        raise InvalidInput(
            f"The baseline ({type(baseline).__name__}, a {model_kind(baseline)}) does not do "
            f"the model's task ({type(model).__name__}, task '{chosen}'). Compare against a "
            "baseline trained for the same task.",
            field="baseline",
        )
    if given is None and infer_task(y, baseline) != chosen:
        raise InvalidInput(
            f"The baseline's task '{infer_task(y, baseline)}' differs from the model's task "
            f"'{chosen}'. Compare against a baseline trained on the same target.",
            field="baseline",
        )


def _check_same_classes(model: Predictions, base: Predictions) -> None:
    if model.classes != base.classes:
        raise InvalidInput(
            f"The baseline's classes {shown(list(base.classes))} differ from the model's "
            f"{shown(list(model.classes))}. Compare models trained on the same labels.",
            field="baseline",
        )


def _warnings(
    metrics: dict[str, MetricValue], slices: Sequence[Any], preds: Predictions, n_bootstrap: int
) -> list[str]:
    out = [
        f"{name} was undefined in {v.n_undefined} of {n_bootstrap} resamples (e.g. one class "
        "drawn); its interval uses the others"
        for name, v in metrics.items()
        if v.n_undefined > 0.01 * n_bootstrap
    ]
    out += [s.warning for s in slices if s.warning]
    if preds.task != "regression" and preds.proba is None:
        out.append(
            "the model has no predict_proba: probability metrics and calibration are skipped"
        )
    return out

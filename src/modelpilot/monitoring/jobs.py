"""Monitoring a deployment: drift of live inputs and predictions against the training data,
performance where labels arrived, and operations (throughput, latency, errors) per window.

The reference is the stable model version's dataset with role ``reference``, else its
``training`` dataset (both recorded by ``log_model``); the current window comes from the
prediction log. Only the model's signature inputs are features: a target or id column in the
reference data, or an input of another version in the log, is never scored as drift. The
dataset verdict weighs each feature by the permutation importance in the version's newest
stored evaluation (``mp.evaluate_version``), equally when there is none. The figures feed the
alert manager under the names alert rules use (``drift.share_drifted``,
``drift.weighted_share``, ``ops.error_rate``, ...).

A job takes the narrow things it reads: the metadata store (deployment, version, datasets,
log policies), the artifact store (the model's package, the reference dataset) and the home
whose prediction log and labels it scores (a data plane's home). ``modelpilot server`` runs
it on its own store and home (see :mod:`modelpilot.monitoring.service`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore
from modelpilot.data import load_dataset
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.models import LoadedModel, TrustPolicy, load_package
from modelpilot.monitoring.drift.detect import detect_drift
from modelpilot.monitoring.report import DriftReport
from modelpilot.monitoring.slice_performance import (
    SLICE_DROP,
    SliceReference,
    SliceReport,
    measure_slices,
)
from modelpilot.predictions import PredictionReader, join_labels, read_labels
from modelpilot.predictions.policy_store import load_policy_set
from modelpilot.registry import get_version
from modelpilot.registry.records import latest_record
from modelpilot.release import get_deployment
from modelpilot.store import Store

_REFERENCE_SAMPLE = 50_000


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring pass over a window."""

    deployment: str
    model: str
    window_start_ms: int
    window_end_ms: int
    rows: int
    drift: DriftReport | None
    figures: dict[str, float]
    notes: list[str]
    report_id: int | None = None  # set once the report is stored (MonitoringService.run)
    created_ms: int | None = None
    slices: SliceReport | None = None  # performance by slice, when the evaluation has slices
    details: dict[str, str] = field(default_factory=dict)  # figure -> what alerts should say

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "report_id": self.report_id,
            "created_ms": self.created_ms,
            "deployment": self.deployment,
            "model": self.model,
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "rows": self.rows,
            "figures": self.figures,
            "notes": self.notes,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "slices": None if self.slices is None else self.slices.to_dict(),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorResult:
        """The inverse of :meth:`to_dict`."""
        drift = data.get("drift")
        slices = data.get("slices")
        return cls(
            deployment=str(data["deployment"]),
            model=str(data["model"]),
            window_start_ms=int(data["window_start_ms"]),
            window_end_ms=int(data["window_end_ms"]),
            rows=int(data["rows"]),
            drift=None if drift is None else DriftReport.from_dict(drift),
            figures={str(k): float(v) for k, v in data["figures"].items()},
            notes=[str(n) for n in data["notes"]],
            report_id=data.get("report_id"),
            created_ms=data.get("created_ms"),
            slices=None if slices is None else SliceReport.from_dict(slices),
            details={str(k): str(v) for k, v in (data.get("details") or {}).items()},
        )


def monitor_deployment(
    store: Store,
    artifacts: ArtifactStore,
    home: Path,
    deployment: str,
    *,
    window_s: float = 3600.0,
    until_ms: int | None = None,
    cache_dir: Path | None = None,
) -> MonitorResult:
    """Score the last ``window_s`` seconds of a deployment's traffic, as logged in ``home``'s
    prediction log (models are cached under ``cache_dir``, default ``home/cache/packages``)."""
    if window_s <= 0:
        raise InvalidInput(f"The window must be positive; got {window_s} s.", field="window")
    stable = get_deployment(store, deployment).config.stable
    end = until_ms if until_ms is not None else int(time.time() * 1000)
    start = end - int(window_s * 1000)
    current = PredictionReader.of_home(home).window(deployment, start, end)
    notes: list[str] = []
    figures: dict[str, float] = {
        "ops.requests": float(current["request_id"].nunique()) if len(current) else 0.0
    }
    if current.empty:
        notes.append(f"No logged requests for {deployment!r} in the window; nothing to score.")
        return MonitorResult(deployment, stable.ref, start, end, 0, None, figures, notes)
    figures.update(_operations(current, window_s))
    cache = cache_dir or home / "cache" / "packages"
    loaded: list[LoadedModel] = []

    def model() -> LoadedModel:  # loaded once, and only when a part needs it
        if not loaded:
            loaded.append(_load_model(store, artifacts, stable.ref, cache))
        return loaded[0]

    training = _reference(store, artifacts, stable.ref, notes)
    drift = None
    if training is not None:
        logged = {c[3:] for c in current.columns if c.startswith("in.")}
        features = [s.name for s in model().signature.inputs if s.name in logged]
        features = _unprotected(store, stable.model, deployment, features, notes)
        importance = _importance(store, stable.ref, features, notes)
        drift = _drift(model(), training, current, features, importance)
        figures.update(_drift_figures(drift))
    labels = read_labels(home, deployment)
    figures.update(_performance(labels, current, notes))
    sliced = _slices(store, artifacts, stable.ref, model, training, current, labels, notes)
    details: dict[str, str] = {}
    if sliced is not None:
        figures[SLICE_DROP] = sliced.slice_drop
        details[SLICE_DROP] = sliced.describe()
    return MonitorResult(
        deployment, stable.ref, start, end, len(current), drift, figures, notes,
        slices=sliced, details=details,
    )  # fmt: skip


def _drift(
    model: LoadedModel,
    training: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    importance: dict[str, float] | None,
) -> DriftReport:
    """Drift of the logged ``features`` (and the positive-class score) against the reference,
    dataset drift weighted by ``importance`` (equal weights when None)."""
    live = current[[f"in.{f}" for f in features]].set_axis(features, axis=1)
    inputs = [s.name for s in model.signature.inputs if s.name in training.columns]
    scores = model.predict_proba(training[inputs]) if model.signature.is_classifier else None
    reference = training[[f for f in features if f in training.columns]]
    if scores is not None:
        reference = reference.assign(prediction=scores[:, -1])
        score = sorted(c for c in current.columns if c.startswith("out.proba."))[-1]
        live = live.assign(prediction=current[score].to_numpy())
    categorical = [s.name for s in model.signature.inputs if s.dtype in ("string", "bool")]
    return detect_drift(
        reference,
        live,
        categorical=categorical,
        prediction="prediction" if "prediction" in live else (),
        importance=importance,
    )


def _load_model(store: Store, artifacts: ArtifactStore, ref: str, cache_dir: Path) -> LoadedModel:
    """The version's model, trusting what was recorded on it at registration (nothing more)."""
    mv = get_version(store, ref)
    return load_package(
        artifacts,
        mv.package_digest,
        trust=TrustPolicy(mv.trusted_types),
        cache_dir=cache_dir,
        name=mv.name,
        version=mv.version,
    )


def _drift_figures(drift: DriftReport) -> dict[str, float]:
    scored = [c for c in drift.columns if not c.skipped]
    figures = {
        "drift.dataset_drift": float(drift.dataset_drift),
        "drift.share_drifted": (sum(c.drifted for c in scored) / len(scored)) if scored else 0.0,
    }
    if drift.decision is not None:
        figures["drift.weighted_share"] = drift.decision.weighted_share
    return figures


def _importance(
    store: Store, ref: str, features: list[str], notes: list[str]
) -> dict[str, float] | None:
    """Permutation importance of the monitored features from the version's newest stored
    evaluation; ``None`` (equal weights) when there is none or it gives no feature weight."""
    record = latest_record(store, ref, "evaluation")
    explanations = None if record is None else record.payload.get("explanations")
    found = {
        str(item["feature"]): float(item["importance"])
        for item in (explanations or {}).get("permutation") or []
        if item.get("feature") in features and item.get("importance") is not None
    }
    if record is None or not any(value > 0 for value in found.values()):
        notes.append(
            f"Dataset drift weighs features equally: {ref} has no stored evaluation with "
            "permutation importance (mp.evaluate(...) stores one unless explain=False)."
        )
        return None
    notes.append(
        f"Dataset drift weighs features by permutation importance from evaluation record "
        f"{record.id} of {ref}."
    )
    return found


def _unprotected(
    store: Store, model: str, deployment: str, features: list[str], notes: list[str]
) -> list[str]:
    """Features the prediction log keeps as they arrived: a hashed or redacted column would
    always differ from the raw training data, so it is left out of drift (with a note)."""
    policy = load_policy_set(store, [model], [deployment]).effective(model, deployment)
    if policy is None:
        return features
    protected = [f for f in features if policy.action(f) != "keep"]
    if protected:
        notes.append(
            f"Not scored for drift (the log policy does not keep them): {', '.join(protected)}."
        )
    return [f for f in features if f not in protected]


def _operations(current: pd.DataFrame, window_s: float) -> dict[str, float]:
    requests = current.drop_duplicates("request_id")
    errors = requests["error"].notna().sum() if "error" in requests else 0
    latency = requests["latency_ms"].to_numpy(dtype=np.float64)
    return {
        "ops.throughput_rps": len(requests) / window_s,
        "ops.error_rate": float(errors) / len(requests),
        "ops.p50_ms": float(np.percentile(latency, 50)),
        "ops.p99_ms": float(np.percentile(latency, 99)),
    }


def _reference(
    store: Store, artifacts: ArtifactStore, ref: str, notes: list[str]
) -> pd.DataFrame | None:
    """The ``reference`` dataset if the version has one, else its ``training`` dataset."""
    version = get_version(store, ref)
    if not version.linked_datasets:
        notes.append(
            f"{ref} has no training or reference dataset recorded (log_model(..., "
            "datasets={'training': train})); drift cannot be scored."
        )
        return None
    candidates = version.datasets_with_role("reference") or version.datasets_with_role("training")
    if not candidates:
        present = ", ".join(f"{d.name} ({d.role})" for d in version.linked_datasets)
        raise InvalidInput(
            f"Cannot pick a drift reference for {ref}: it has no dataset with role 'reference' "
            f"or 'training'; it has {present}. Register the version with "
            "datasets={'training': train} or {'reference': sample}.",
            field="datasets",
        )
    chosen = candidates[0]
    if len(candidates) > 1:
        notes.append(f"{ref} has {len(candidates)} {chosen.role} datasets; using {chosen.name}.")
    try:
        frame = load_dataset(store, artifacts, chosen.ref)
    except NotFound as exc:
        notes.append(f"Reference dataset unavailable: {exc.message}")
        return None
    return (
        frame.sample(_REFERENCE_SAMPLE, random_state=0) if len(frame) > _REFERENCE_SAMPLE else frame
    )


def _performance(labels: pd.DataFrame, current: pd.DataFrame, notes: list[str]) -> dict[str, float]:
    if labels.empty or "out.prediction" not in current:
        return {}
    joined = join_labels(current.drop_duplicates("request_id"), labels, how="inner")
    if joined.empty:
        notes.append("No labels have arrived yet for the requests in this window.")
        return {}
    figures = {"performance.labelled_rows": float(len(joined))}
    truth = joined["label"].to_numpy()
    predicted = joined["out.prediction"].to_numpy()
    figures["performance.accuracy"] = float(np.mean(truth == predicted))
    probas = sorted(c for c in joined.columns if c.startswith("out.proba."))
    if probas and len(np.unique(truth)) == 2:
        from sklearn.metrics import roc_auc_score

        figures["performance.roc_auc"] = float(roc_auc_score(truth, joined[probas[-1]].to_numpy()))
    return figures


def _slices(
    store: Store,
    artifacts: ArtifactStore,
    ref: str,
    model: Callable[[], LoadedModel],
    training: pd.DataFrame | None,
    current: pd.DataFrame,
    labels: pd.DataFrame,
    notes: list[str],
) -> SliceReport | None:
    """Performance per slice of the version's newest evaluation (None when it has no slices
    or is not a binary classifier's); one row per request, as the labels are."""
    record = latest_record(store, ref, "evaluation")
    reference = None if record is None else SliceReference.from_evaluation(record.payload)
    if record is None or reference is None:
        return None
    rows = current.drop_duplicates("request_id").reset_index(drop=True)
    absent = [c for c in reference.groups if f"in.{c}" not in rows]
    if absent:
        notes.append(f"Slice columns not in the prediction log, not sliced: {', '.join(absent)}.")
    kept = [c for c in reference.groups if c not in absent]
    probas = sorted(c for c in rows.columns if c.startswith("out.proba."))
    if not kept or not probas:
        return None
    positive = _positive_class(record.payload)
    score = f"out.proba.{positive}" if f"out.proba.{positive}" in rows else probas[-1]
    proba = rows[score].to_numpy(dtype=np.float64)
    pred = _is(rows["out.prediction"], positive) if "out.prediction" in rows else proba >= 0.5
    label = join_labels(rows[["request_id"]], labels, how="left")["label"] if len(labels) else None
    known = np.zeros(len(rows), bool) if label is None else label.notna().to_numpy()
    truth = np.full(len(rows), np.nan)
    if label is not None:
        truth[known] = _is(label[known], positive).astype(np.float64)
    window = rows[[f"in.{c}" for c in kept]].set_axis(kept, axis=1)
    calibration = _calibration(store, artifacts, record.payload, model, training, notes)
    return measure_slices(
        window, reference, proba=proba, pred=pred, labels=truth, calibration=calibration
    )


def _calibration(
    store: Store,
    artifacts: ArtifactStore,
    evaluation: dict[str, Any],
    model: Callable[[], LoadedModel],
    training: pd.DataFrame | None,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Labelled scores to calibrate CBPE on: the evaluation's dataset (held out) when it is
    recorded and loads, else the drift reference when it holds the target; None otherwise."""
    target = str(evaluation.get("target"))
    frame = None
    if evaluation.get("dataset"):
        try:
            frame = load_dataset(store, artifacts, str(evaluation["dataset"]))
        except NotFound as exc:
            notes.append(f"Evaluation dataset unavailable for slice estimates: {exc.message}")
    if (frame is None or target not in frame) and training is not None and target in training:
        frame = training
    if frame is None or target not in frame:
        notes.append(
            "No labelled data to estimate slice performance without labels from; slices with "
            "too few labels are reported as small."
        )
        return None
    frame = frame.dropna(subset=[target])
    if len(frame) > _REFERENCE_SAMPLE:
        frame = frame.sample(_REFERENCE_SAMPLE, random_state=0)
    loaded = model()
    inputs = [s.name for s in loaded.signature.inputs]
    proba = np.asarray(loaded.predict_proba(frame[inputs])[:, -1], dtype=np.float64)
    positive = _positive_class(evaluation)
    truth = _is(frame[target], positive).astype(np.float64)
    return proba, truth


def _positive_class(evaluation: dict[str, Any]) -> str:
    """The positive class of a binary evaluation (its second class; 1 when not recorded)."""
    classes = evaluation.get("classes") or [0, 1]
    return str(classes[-1])


def _is(values: pd.Series, positive: str) -> np.ndarray:
    """Where ``values`` are the positive class: as numbers when both are (1, 1.0 and "1"
    agree), else as text."""
    numbers = pd.to_numeric(values, errors="coerce")
    try:
        wanted = float(positive)
    except ValueError:
        return np.asarray(values.astype(str).to_numpy() == positive)
    if numbers.notna().all():
        return np.asarray(numbers.to_numpy(dtype=np.float64) == wanted)
    return np.asarray(values.astype(str).to_numpy() == positive)

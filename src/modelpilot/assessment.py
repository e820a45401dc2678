"""Evaluation and promotion gates on registered versions: ``mp.evaluate("churn/4", ...)``.

Glue between the registry and :mod:`modelpilot.evaluation` (which works on plain objects):
resolve references, load models safely, load dataset versions, and store every result and
verdict on the version (``version_records``) so model cards and the registry show them.

The evaluation runs where the caller is; everything it reads and writes goes through the
workspace's services (registry, datasets, artifacts), so the same code records on a local
store or on ``modelpilot server``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot import evaluation
from modelpilot.data import DatasetVersion
from modelpilot.errors import InvalidInput
from modelpilot.models import read_manifest
from modelpilot.optimization import stored_fidelity
from modelpilot.registry.entities import ModelVersion
from modelpilot.workspace import Workspace


def _frame(ws: Workspace, data: pd.DataFrame | str | DatasetVersion) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, DatasetVersion):
        return ws.load_dataset(f"{data.name}@{data.digest}")
    if isinstance(data, str):
        return ws.load_dataset(data)
    raise InvalidInput(
        f"data must be a DataFrame or a dataset reference (name@version); got "
        f"{type(data).__name__}.",
        field="data",
    )


def _predictor(ws: Workspace, ref: str, trusted_types: tuple[str, ...] = ()) -> Any:
    """The native model behind a version (sklearn estimator, booster adapter, ...)."""
    return ws.load_model(ref, trusted_types=trusted_types).predictor


def evaluate_version(
    ws: Workspace,
    ref: str,
    data: pd.DataFrame | str | DatasetVersion,
    target: str,
    *,
    baseline: str | None = None,
    store: bool = True,
    **options: Any,
) -> evaluation.EvaluationResult:
    """Evaluate a registered version (optionally against a baseline reference) and record it."""
    version = ws.get_model_version(ref)
    frame = _frame(ws, data)
    if options.get("membership"):
        options["train_data"] = _training_rows(ws, version, options.get("train_data"))
    base = None
    base_name = "baseline"
    if baseline is not None:
        base_version = ws.get_model_version(baseline)
        base = _predictor(ws, base_version.ref)
        base_name = base_version.ref
    result = evaluation.evaluate(
        _predictor(ws, version.ref),
        frame,
        target,
        baseline=base,
        model_name=version.ref,
        baseline_name=base_name,
        **options,
    )
    if store:
        html = _html(result)
        digest = ws.artifacts.put_bytes(html.encode()) if html else None
        payload = result.to_dict()
        payload["dataset"] = (
            data.ref
            if isinstance(data, DatasetVersion)
            else data
            if isinstance(data, str)
            else None
        )
        ws.registry.add_record(version.ref, "evaluation", payload, blob_digest=digest)
    return result


def gate_version(
    ws: Workspace,
    ref: str,
    policy_path: str | Path,
    data: pd.DataFrame | str | DatasetVersion,
    target: str,
    *,
    baseline: str | None = None,
    **options: Any,
) -> evaluation.GateVerdict:
    """Evaluate, measure latency and package size, check the policy, and record the verdict."""
    policy = evaluation.load_policy(policy_path)
    version = ws.get_model_version(ref)
    # the opt-in risk sections the policy judges run without being asked for
    if policy.adversarial is not None:
        options.setdefault("adversarial", True)
        options.setdefault("adversarial_budget", policy.adversarial.budget)
    if policy.membership is not None:
        options.setdefault("membership", True)
    if policy.explanations is not None:
        options.setdefault("shap", True)
    result = evaluate_version(ws, version.ref, data, target, baseline=baseline, **options)
    latency_p99_ms = None  # measured only when the policy checks it: it loads the model again
    if policy.latency is not None:
        frame = _frame(ws, data)
        model = _predictor(ws, version.ref)
        latency_p99_ms = evaluation.measure_latency(model, frame[result.features].head(1)).p99_ms
    stored_size = read_manifest(ws.artifacts, version.package_digest).get("size_bytes")
    size = int(stored_size) if stored_size is not None else None  # unknown fails the check
    verdict = evaluation.check_gate(
        policy,
        result,
        latency_p99_ms=latency_p99_ms,
        package_size_bytes=size,
        fidelity=stored_fidelity(version),
    )
    payload = verdict.to_dict()
    payload["policy_file"] = str(policy_path)
    payload["baseline"] = baseline
    ws.registry.add_record(version.ref, "gate", payload)
    return verdict


def _training_rows(
    ws: Workspace, version: ModelVersion, given: pd.DataFrame | str | DatasetVersion | None
) -> pd.DataFrame:
    """The rows a version was trained on: ``given``, else its linked training dataset."""
    if given is not None:
        return _frame(ws, given)
    linked = version.datasets_with_role("training")
    if not linked:
        raise InvalidInput(
            f"Membership-inference risk needs {version.ref}'s training rows, and it has no "
            "linked training dataset. Pass train_data=<DataFrame or name@version> (CLI: "
            "--train-data), or log the model with datasets=[<training dataset>].",
            field="train_data",
        )
    return ws.load_dataset(linked[0].ref)


def _html(result: evaluation.EvaluationResult) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluation.html"
        result.save_html(path)
        return path.read_text(encoding="utf-8")

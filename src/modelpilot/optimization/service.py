"""``mp.optimize``: build optimised candidates of a registered version, prove them faithful,
measure them, and register each as a new version of the same model.

Order matters for a run killed half way: every candidate is converted, packaged, loaded back
from its package and measured first; only then is each registered, in one transaction with
the tags that say what it is (``optimized_from``, ``optimize.target``, ``fidelity`` and its
figures), so a candidate is either absent or complete. The full table follows as an
``optimization`` record. A candidate that fails the fidelity rules is registered all the same
(``fidelity: failed``), so it can be inspected, and the registry refuses it an alias.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd
from pydantic import ValidationError

from modelpilot.artifacts import ArtifactStore
from modelpilot.data import DatasetVersion
from modelpilot.data.protocol import DatasetService
from modelpilot.errors import InvalidInput
from modelpilot.evaluation import FidelityRules, fidelity_checks
from modelpilot.models import LoadedModel, build_package, load_package, read_manifest
from modelpilot.models.flavors.base import TrustPolicy
from modelpilot.optimization import measure
from modelpilot.optimization.compile import to_compiled
from modelpilot.optimization.convert import float32_flip_hint, quantise_int8, to_onnx
from modelpilot.optimization.distill import check_student, distill
from modelpilot.optimization.table import CandidateRow, CandidateTable, mark_pareto
from modelpilot.registry import ModelVersion
from modelpilot.registry.protocol import RegistryService

TARGETS = ("onnx", "onnx-int8", "distilled", "compiled")
_CANDIDATE_FLAVORS = ("onnx", "compiled")  # what optimize makes: optimise the source instead
DEFAULT_RULES = FidelityRules(min_agreement=0.999, max_abs_proba_diff=0.001)
TAG_SOURCE = "optimized_from"
TAG_TARGET = "optimize.target"
TAG_FIDELITY = "fidelity"
TAG_AGREEMENT = "fidelity.agreement"
TAG_DIFF = "fidelity.max_abs_proba_diff"
TAG_STUDENT = "distill.student"

Data = pd.DataFrame | str | DatasetVersion | None


@dataclass(frozen=True)
class Candidate:
    """One registered candidate: its version, its target and whether it passed fidelity."""

    version: ModelVersion
    target: str
    passed: bool
    detail: str = ""
    failures: tuple[str, ...] = ()  # the fidelity checks it failed, as sentences

    @property
    def ref(self) -> str:
        """``name/version`` of the candidate."""
        return self.version.ref


@dataclass(frozen=True)
class OptimizeResult:
    """What one ``optimize`` run registered, and the table it measured."""

    source: ModelVersion
    candidates: list[Candidate]
    table: CandidateTable

    def to_frame(self) -> pd.DataFrame:
        """The candidate table, one row per model (the source first)."""
        return self.table.to_frame()


def parse_targets(to: str | Sequence[str]) -> list[str]:
    """``"onnx,onnx-int8"`` or a list, checked against the targets this version builds.

    >>> parse_targets("onnx, onnx-int8")
    ['onnx', 'onnx-int8']
    >>> parse_targets("tflite")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Unknown optimisation target 'tflite'. Available targets: onnx, onnx-int8, distilled, compiled.
    """  # noqa: E501
    names = [t.strip() for t in (to.split(",") if isinstance(to, str) else to) if t.strip()]
    if not names:
        raise InvalidInput(f"Give at least one target: {', '.join(TARGETS)}.", field="to")
    for name in names:
        if name not in TARGETS:
            raise InvalidInput(
                f"Unknown optimisation target {name!r}. Available targets: {', '.join(TARGETS)}.",
                field="to",
            )
    return list(dict.fromkeys(names))


def fidelity_rules(min_agreement: float, max_abs_proba_diff: float) -> FidelityRules:
    """The bounds a candidate must meet, checked like the gate policy's ``fidelity`` key.

    >>> fidelity_rules(1.5, 0.001)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Fidelity bound min_agreement: ...; got 1.5.
    """
    try:
        return FidelityRules(min_agreement=min_agreement, max_abs_proba_diff=max_abs_proba_diff)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(
            f"Fidelity bound {error['loc'][0]}: {error['msg']}; got {error['input']}.",
            field=str(error["loc"][0]),
        ) from None


def stored_fidelity(version: ModelVersion) -> dict[str, float | None] | None:
    """The fidelity ``optimize`` stored on a candidate (None for any other version)."""
    if TAG_SOURCE not in version.tags:
        return None
    agreement = version.tags.get(TAG_AGREEMENT) or None
    diff = version.tags.get(TAG_DIFF) or None
    return {
        "agreement": None if agreement is None else float(agreement),
        "max_abs_proba_diff": None if diff is None else float(diff),
    }


def optimize_version(
    registry: RegistryService,
    artifacts: ArtifactStore,
    datasets: DatasetService,
    load: Callable[[str], LoadedModel],
    ref: str,
    to: str | Sequence[str],
    *,
    data: Data = None,
    holdout: Data = None,
    target: str | None = None,
    rules: FidelityRules = DEFAULT_RULES,
    student: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> OptimizeResult:
    """Convert ``ref`` to each target, measure, and register the candidates (see module doc).

    ``data`` (default: the version's training dataset) is what fidelity and speed are
    measured on; ``holdout`` (default: its test or validation dataset, if any) adds fidelity
    there and the holdout metric, with ``target`` as the label column (default: the one
    column the model does not take). ``student`` is the distilled target's student kind
    (``auto``, ``linear``, ``hgb``; see :mod:`modelpilot.optimization.distill`).
    ``progress`` is told each step as it starts ("Converting to ONNX"): a run takes seconds
    to minutes, and the CLI shows it on a status line.
    """
    say = progress or _quiet
    targets = parse_targets(to)
    check_student(student)
    source = registry.get_version(ref)
    if source.flavor in _CANDIDATE_FLAVORS:
        raise InvalidInput(
            f"{source.ref} is already a {source.flavor} candidate (of "
            f"{source.tags.get(TAG_SOURCE)}); "
            "optimise the source version instead.",
            field="ref",
        )
    say(f"Loading {source.ref} and its data")
    model = load(source.ref)
    inputs = model.prepare(_features(_frame(datasets, data, source, "data"), model, "data"))
    hold_frame = _frame(datasets, holdout, source, "holdout")
    hold = None
    if hold_frame is not None:
        hold = (
            model.prepare(_features(hold_frame, model, "holdout")),
            _labels(hold_frame, model, target),
        )
    built, skipped = _build(model, targets, source.ref, inputs, student, say)
    load_source = functools.partial(load, source.ref)
    source_row, measured = _measure(
        model, source, artifacts, built, inputs, hold, rules, load_source, say
    )
    rows = mark_pareto([source_row, *(m.row for m in measured)])
    measured = [replace(m, row=row) for m, row in zip(measured, rows[1:], strict=True)]
    table = CandidateTable(source.ref, rows, skipped)
    say("Registering the candidates")
    return _register(registry, source, measured, table)


def _quiet(step: str) -> None:
    """No progress to show (the SDK's default)."""


def _build(
    model: LoadedModel,
    targets: list[str],
    where: str,
    inputs: pd.DataFrame,
    student: str,
    say: Callable[[str], None] = _quiet,
) -> tuple[list[Built], dict[str, str]]:
    built: list[Built] = []
    skipped: dict[str, str] = {}
    onnx_targets = [name for name in targets if name.startswith("onnx")]
    if onnx_targets:
        say("Converting to ONNX")
        base = to_onnx(model)
        for name in onnx_targets:
            if name == "onnx":
                built.append(Built(name, base))
                continue
            try:
                say("Quantising the ONNX graph to int8")
                built.append(Built(name, quantise_int8(base, where)))
            except InvalidInput as exc:
                skipped[name] = exc.message
    if "compiled" in targets:  # asked with other targets, skipped with the reason
        try:
            say("Compiling the trees to a shared library")
            built.append(Built("compiled", to_compiled(model)))
        except InvalidInput as exc:
            skipped["compiled"] = exc.message
    if "distilled" in targets:
        say(f"Distilling a student ({student})")
        fitted = distill(model, inputs, kind=student)
        built.append(Built("distilled", fitted.model, fitted.kind, fitted.summary))
    if not built:
        raise InvalidInput(" ".join(skipped.values()), field="to")
    return built, skipped


@dataclass(frozen=True)
class Built:
    """A candidate model before packaging; ``student`` and ``detail`` for a distilled one."""

    target: str
    model: object
    student: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Measured:
    """A packaged, loaded-back and measured candidate, ready to register."""

    built: Built
    digest: str
    trusted_types: tuple[str, ...]
    row: CandidateRow
    failures: tuple[str, ...] = ()


Holdout = tuple[pd.DataFrame, pd.Series | None] | None


def _measure(
    model: LoadedModel,
    source: ModelVersion,
    artifacts: ArtifactStore,
    built: list[Built],
    inputs: pd.DataFrame,
    hold: Holdout,
    rules: FidelityRules,
    load_source: Callable[[], LoadedModel],
    say: Callable[[str], None] = _quiet,
) -> tuple[CandidateRow, list[Measured]]:
    is_classifier = model.signature.is_classifier
    say(f"Measuring {source.ref}: outputs, speed, memory")
    reference = measure.outputs(model.predictor, inputs, is_classifier)
    hold_reference = (
        None if hold is None else measure.outputs(model.predictor, hold[0], is_classifier)
    )
    source_metric = _metric(hold, hold_reference, model)
    size = read_manifest(artifacts, source.package_digest).get("size_bytes")
    source_row = CandidateRow(
        source.ref,
        "source",
        source.flavor,
        "source",
        None if size is None else int(size),
        measure.speed(model.predictor, inputs, is_classifier).to_dict(),
        metric=source_metric[0],
        holdout_metric=source_metric[1],
        load_peak_bytes=measure.load_peak_bytes(load_source),
    )
    measured: list[Measured] = []
    for candidate in built:
        say(f"Measuring the {candidate.target} candidate: fidelity, speed, memory")
        package = build_package(
            candidate.model, artifacts, input_example=inputs.head(5), signature=model.signature,
            # a student keeps its teacher's preprocessing; a compiled library is vouched for
            # by its digest, as optimize built it
            trusted_types=(*source.trusted_types, *getattr(candidate.model, "trusted_types", ())),
        )  # fmt: skip
        trust = TrustPolicy(package.trusted_types)
        loaded = load_package(artifacts, package.digest, trust=trust)  # measure what will serve
        fidelity = measure.compare(
            reference, measure.outputs(loaded.predictor, inputs, is_classifier),
            is_classifier=is_classifier,
        )  # fmt: skip
        hold_fidelity = None
        metric: tuple[str | None, float | None] = (None, None)
        interval: tuple[float | None, float | None] = (None, None)
        if hold is not None and hold_reference is not None:
            hold_out = measure.outputs(loaded.predictor, hold[0], is_classifier)
            hold_fidelity = measure.compare(hold_reference, hold_out, is_classifier=is_classifier)
            metric = _metric(hold, hold_out, model)
            if hold[1] is not None:
                interval = measure.metric_difference_interval(
                    hold_out, hold_reference, hold[1], model.classes
                )
        worst = measure.worst(fidelity, hold_fidelity)
        failures = tuple(c.message for c in fidelity_checks(rules, worst) if not c.passed)
        passed = not failures
        hint = float32_flip_hint(model.predictor) if candidate.target == "onnx" else ""
        if failures and hint:
            failures += (hint,)
        row = CandidateRow(
            candidate.target,
            candidate.target,
            package.flavor,
            "passed" if passed else "failed",
            package.size_bytes,
            measure.speed(loaded.predictor, inputs, is_classifier).to_dict(),
            fidelity.to_dict(),
            None if hold_fidelity is None else hold_fidelity.to_dict(),
            metric[0],
            metric[1],
            _difference(metric[1], source_metric[1]),
            metric_diff_lower=interval[0],
            metric_diff_upper=interval[1],
            # a second load: the flavor's runtime is imported already, the package is counted
            load_peak_bytes=measure.load_peak_bytes(
                lambda: load_package(artifacts, package.digest, trust=trust)  # noqa: B023
            ),
        )
        measured.append(Measured(candidate, package.digest, package.trusted_types, row, failures))
    return source_row, measured


def _register(
    registry: RegistryService,
    source: ModelVersion,
    measured: list[Measured],
    table: CandidateTable,
) -> OptimizeResult:
    candidates: list[Candidate] = []
    rows = list(table.rows)
    for index, item in enumerate(measured, start=1):
        name, row = item.built.target, item.row
        fidelity = _worst_of(row)
        student = {TAG_STUDENT: item.built.student} if item.built.student else {}
        version = registry.register_version(
            source.name,
            package_digest=item.digest,
            flavor=row.flavor,
            signature=source.signature,
            run_id=source.run_id,
            datasets=source.linked_datasets,
            description=f"{name} candidate of {source.ref} (modelpilot optimize)"
            + (f": {item.built.detail}" if item.built.detail else ""),
            tags={
                TAG_SOURCE: source.ref,
                TAG_TARGET: name,
                TAG_FIDELITY: row.status,
                TAG_AGREEMENT: _tag(fidelity["agreement"]),
                TAG_DIFF: _tag(fidelity["max_abs_proba_diff"]),
                **student,
            },
            trusted_types=item.trusted_types,
        )
        rows[index] = dataclasses.replace(row, ref=version.ref)
        passed = row.status == "passed"
        candidates.append(Candidate(version, name, passed, item.built.detail, item.failures))
    final = dataclasses.replace(table, rows=rows)
    for candidate in candidates:
        payload = {**final.to_dict(), "candidate": candidate.ref, "target": candidate.target}
        registry.add_record(candidate.ref, "optimization", payload)
    return OptimizeResult(source, candidates, final)


def _worst_of(row: CandidateRow) -> dict[str, float | None]:
    parts = [
        measure.Fidelity(**f) for f in (row.fidelity_data, row.fidelity_holdout) if f is not None
    ]
    return measure.worst(*parts)


def _tag(value: float | None) -> str:
    return "" if value is None else repr(value)


def _difference(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _metric(hold: Holdout, output: object, model: LoadedModel) -> tuple[str | None, float | None]:
    if hold is None or hold[1] is None or output is None:
        return None, None
    import numpy as np

    return measure.holdout_metric(np.asarray(output), hold[1], model.classes)


def _frame(
    datasets: DatasetService, given: Data, source: ModelVersion, what: str
) -> pd.DataFrame | None:
    if isinstance(given, pd.DataFrame):
        return given
    if isinstance(given, DatasetVersion):
        return datasets.load_dataset(given.ref)
    if isinstance(given, str):
        return datasets.load_dataset(given)
    if given is not None:
        raise InvalidInput(
            f"{what} must be a DataFrame or a dataset reference (name@version); got "
            f"{type(given).__name__}.",
            field=what,
        )
    roles = ("training",) if what == "data" else ("test", "validation")
    for role in roles:
        linked = source.datasets_with_role(role)
        if linked:
            return datasets.load_dataset(linked[0].ref)
    if what == "data":
        raise InvalidInput(
            f"No data to measure {source.ref}'s candidates on: it has no linked training "
            "dataset. Pass data=<DataFrame or name@version> (CLI: --data).",
            field="data",
        )
    return None


def _features(frame: pd.DataFrame | None, model: LoadedModel, what: str) -> pd.DataFrame:
    assert frame is not None
    missing = [c for c in model.signature.column_names if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The {what} lacks the model's input column(s) {', '.join(map(repr, missing))}; "
            f"{model.display_name} takes {', '.join(model.signature.column_names)}.",
            field=what,
        )
    if len(frame) == 0:
        raise InvalidInput(f"The {what} has no rows.", field=what)
    return frame[model.signature.column_names]


def _labels(frame: pd.DataFrame, model: LoadedModel, target: str | None) -> pd.Series | None:
    if target is not None:
        if target not in frame.columns:
            raise InvalidInput(
                f"The holdout has no column {target!r}; its columns: "
                f"{', '.join(map(str, frame.columns))}.",
                field="target",
            )
        return frame[target]
    extra = [c for c in frame.columns if c not in set(model.signature.column_names)]
    if len(extra) > 1:
        raise InvalidInput(
            f"Which holdout column is the label? Several are not model inputs: "
            f"{', '.join(map(str, extra))}. Pass target=<column> (CLI: --target).",
            field="target",
        )
    return frame[extra[0]] if extra else None


__all__ = [
    "DEFAULT_RULES",
    "TARGETS",
    "Candidate",
    "OptimizeResult",
    "fidelity_rules",
    "optimize_version",
    "parse_targets",
    "stored_fidelity",
]

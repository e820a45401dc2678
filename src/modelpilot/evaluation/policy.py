"""Gate policies: a YAML file saying what a model must show before it may be promoted.

Every section is optional, but a policy needs at least one check::

    schema_version: 1
    name: churn-promotion
    metrics:                        # this model's point values
      roc_auc: {min: 0.80}
      log_loss: {max: 0.45}
    baseline:                       # non-inferiority against the champion (paired bootstrap)
      confidence: 0.95
      max_drop: {roc_auc: 0.005}
    slices:                         # every slice (small ones skipped unless include_small)
      max_drop_vs_baseline: {roc_auc: 0.02}
      metrics: {roc_auc: {min: 0.70}}
    calibration: {max_ece: 0.05}
    fairness: {max_demographic_parity_difference: 0.1}
    robustness: {max_drop: 0.05}
    latency: {max_p99_ms: 5}
    package: {max_size_mb: 200}
    fidelity: {min_agreement: 0.999, max_abs_proba_diff: 0.001}   # an optimised candidate
    adversarial: {max_flip_share: 0.1, budget: 0.05}   # rows flipped within 5% of ranges
    membership: {max_auc: 0.6}      # loss-threshold membership-inference attack
    explanations: {max_feature_share: 0.5}   # share of total mean |SHAP| of the top feature

Errors name the file and line (from YAML's node marks), the key path, what was expected,
what was found, and the nearest known key for a misspelling.

>>> policy = parse_policy("calibration:\\n  max_ece: 0.05\\n")
>>> policy.calibration.max_ece
0.05
>>> parse_policy("calibration:\\n  max_eec: 0.05\\n", source="gate.yaml")
Traceback (most recent call last):
modelpilot.errors.InvalidInput: Gate policy gate.yaml, line 2, calibration.max_eec: unknown key. Did you mean 'max_ece'? Known keys: max_ece.
"""  # noqa: E501

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelpilot.errors import InvalidInput, shown
from modelpilot.evaluation.metrics import METRICS


def _known_metric(name: str) -> str:
    if name not in METRICS:
        close = difflib.get_close_matches(name, list(METRICS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown metric {name!r}.{hint} Known metrics: {', '.join(METRICS)}")
    return name


MetricName = Annotated[str, AfterValidator(_known_metric)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Margin = Annotated[float, Field(ge=0.0)]
Confidence = Annotated[float, Field(gt=0.5, lt=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bound(_Section):
    """An absolute bound on a metric's point value: ``{min: 0.8}``, ``{max: 0.4}`` or both."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, e.g. {min: 0.8}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class BaselineRules(_Section):
    """Non-inferiority: the one-sided lower bound of the improvement ≥ −max_drop."""

    max_drop: dict[MetricName, Margin] = Field(min_length=1)
    confidence: Confidence = 0.95
    required: bool = True


class SliceRules(_Section):
    """Rules every (large enough) slice must meet; ``columns`` limits which slice columns."""

    metrics: dict[MetricName, Bound] = Field(default_factory=dict)
    max_drop_vs_baseline: dict[MetricName, Margin] = Field(default_factory=dict)
    confidence: Confidence | None = None
    columns: list[str] | None = None
    include_small: bool = False

    @model_validator(mode="after")
    def _has_a_rule(self) -> SliceRules:
        if not self.metrics and not self.max_drop_vs_baseline:
            raise ValueError("give metrics and/or max_drop_vs_baseline")
        return self


class CalibrationRules(_Section):
    """An upper bound on the expected calibration error."""

    max_ece: Share


class FairnessRules(_Section):
    """Upper bounds on disparity per sensitive attribute (all evaluated ones by default)."""

    max_demographic_parity_difference: Share | None = None
    max_equalized_odds_difference: Share | None = None
    attributes: list[str] | None = None

    @model_validator(mode="after")
    def _has_a_rule(self) -> FairnessRules:
        if self.max_demographic_parity_difference is None and (
            self.max_equalized_odds_difference is None
        ):
            raise ValueError(
                "give max_demographic_parity_difference and/or max_equalized_odds_difference"
            )
        return self


class RobustnessRules(_Section):
    """How much the primary metric may worsen under each perturbation scenario."""

    max_drop: Margin
    scenarios: list[str] | None = None
    allow_failures: bool = False


class AdversarialRules(_Section):
    """The share of rows whose class flips within ``budget`` (a share of each feature's
    observed range) must be at most ``max_flip_share``."""

    max_flip_share: Share
    budget: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05


class MembershipRules(_Section):
    """The loss-threshold membership-inference attack's AUC must be at most ``max_auc``
    (0.5 is a coin toss)."""

    max_auc: Annotated[float, Field(ge=0.5, le=1.0)]


class ExplanationRules(_Section):
    """No single feature may carry more than ``max_feature_share`` of the total mean |SHAP|
    (a model leaning on one column, often a proxy or a leak)."""

    max_feature_share: Share


class LatencyRules(_Section):
    """An upper bound on p99 in-process latency of one-row predictions."""

    max_p99_ms: Annotated[float, Field(gt=0)]


class PackageRules(_Section):
    """An upper bound on the model package's size (1 MB = 1,000,000 bytes)."""

    max_size_mb: Annotated[float, Field(gt=0)]


class FidelityRules(_Section):
    """How closely an optimised candidate (``modelpilot optimize``) must follow its source.

    ``min_agreement``: share of rows where both predict the same class; ``max_abs_proba_diff``:
    the largest absolute difference of any class probability (of the prediction, relative to
    ``max(1, |source|)``, for a regressor), over the data and the holdout it was measured on.
    """

    min_agreement: Share | None = None
    max_abs_proba_diff: Margin | None = None

    @model_validator(mode="after")
    def _has_a_rule(self) -> FidelityRules:
        if self.min_agreement is None and self.max_abs_proba_diff is None:
            raise ValueError("give min_agreement and/or max_abs_proba_diff")
        return self


class GatePolicy(_Section):
    """A promotion gate: the checks :func:`~modelpilot.evaluation.check_gate` runs."""

    schema_version: Literal[1] = 1
    name: str = "gate"
    metrics: dict[MetricName, Bound] = Field(default_factory=dict)
    baseline: BaselineRules | None = None
    slices: SliceRules | None = None
    calibration: CalibrationRules | None = None
    fairness: FairnessRules | None = None
    robustness: RobustnessRules | None = None
    latency: LatencyRules | None = None
    package: PackageRules | None = None
    fidelity: FidelityRules | None = None
    adversarial: AdversarialRules | None = None
    membership: MembershipRules | None = None
    explanations: ExplanationRules | None = None

    @model_validator(mode="after")
    def _has_a_check(self) -> GatePolicy:
        sections: list[BaseModel | None] = [self.baseline, self.slices, self.calibration]
        sections += [self.fairness, self.robustness, self.latency, self.package, self.fidelity]
        sections += [self.adversarial, self.membership, self.explanations]
        if not self.metrics and all(s is None for s in sections):
            raise ValueError(
                "a policy needs at least one check (metrics, baseline, slices, calibration, "
                "fairness, robustness, latency, package, fidelity, adversarial, membership "
                "or explanations)"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-able data (what a stored gate verdict records)."""
        return self.model_dump(mode="json", exclude_none=True)


def load_policy(path: str | Path) -> GatePolicy:
    """Read and check a gate policy file; errors name the file and line.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = Path(d) / "gate.yaml"
    ...     _ = path.write_text("latency: {max_p99_ms: 5}\\n")
    ...     load_policy(path).latency.max_p99_ms
    5.0
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"No gate policy file at {file}. Pass the path of a YAML policy (see "
            "docs/evaluation.md for the schema).",
            field="policy",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read gate policy {file}: {exc}.", field="policy") from exc
    return parse_policy(text, source=file.name)


def parse_policy(text: str, *, source: str = "<policy>") -> GatePolicy:
    """Check a gate policy given as YAML text (``source`` names it in errors)."""
    where = f"Gate policy {source}"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(
            f"{where}{line}: not valid YAML ({exc.problem}). Fix the syntax there.",
            field="policy",
        ) from None
    if root is None:
        raise InvalidInput(f"{where} is empty. Add at least one check.", field="policy")
    duplicate = duplicate_key(root)
    if duplicate is not None:
        raise InvalidInput(
            f"{where}, line {duplicate.start_mark.line + 1}: key {duplicate.value!r} appears "
            "twice in the same mapping; YAML would silently keep the last one. Remove one.",
            field=str(duplicate.value),
        )
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{where}, line {root.start_mark.line + 1}: expected a mapping of sections "
            f"(metrics, baseline, slices, …); got {shown(data)}.",
            field="policy",
        )
    try:
        return GatePolicy.model_validate(data)
    except ValidationError as exc:
        raise _policy_error(exc, root, where) from None


def duplicate_key(node: yaml.Node) -> yaml.ScalarNode | None:
    """The first key node that repeats a key of its own mapping (YAML keeps only the last
    one silently), or None."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                found: yaml.ScalarNode = key
                return found
            seen.add(key.value)
            inner = duplicate_key(value)
            if inner is not None:
                return inner
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            inner = duplicate_key(item)
            if inner is not None:
                return inner
    return None


def _policy_error(exc: ValidationError, root: yaml.Node, where: str) -> InvalidInput:
    line, path, detail = explain_validation(exc, root, GatePolicy)
    return InvalidInput(f"{where}, line {line}, {path}: {detail}", field=path)


def explain_validation(
    exc: ValidationError, root: yaml.Node, model: type[BaseModel]
) -> tuple[int, str, str]:
    """The 1-based line, the dotted key path and the message for the first error of a YAML
    document validated as ``model``; an unknown key lists the keys accepted there."""
    # a misspelt key is reported as unknown, not as the required key it failed to be
    error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc = [part for part in error["loc"] if part != "[key]"]
    path = ".".join(str(p) for p in loc) or "(top level)"
    line = node_line(root, loc)
    if error["type"] == "extra_forbidden":
        known = known_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        detail = f"unknown key.{hint} Known keys: {', '.join(known)}."
    elif error["type"] == "missing":
        detail = "missing required key. Add it."
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        given = error.get("input")
        got = shown(given)
        # a whole section's check (a model validator) says what it found itself
        plain = got in message or isinstance(given, dict)
        detail = f"{message}." if plain else f"{message}; got {got}."
    return line, path, detail


def node_line(root: yaml.Node, loc: list[Any]) -> int:
    """1-based line of the deepest node ``loc`` reaches (a key's own line for mappings)."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def known_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """The keys accepted at ``loc`` (walking ``model``'s annotations)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if typing.get_origin(current) in (list, tuple) and isinstance(part, int):
            current = typing.get_args(current)[0]
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, ...]`` → ``X``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation

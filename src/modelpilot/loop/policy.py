"""The continuous-training policy of a deployment: a YAML file, checked with line numbers.

What starts a retraining (the triggers, with the limits of
:mod:`modelpilot.pipelines.triggers`), which pipeline trains on which data window, how the
candidate is evaluated (data, target column, gate policy), how it rolls out (the
:class:`~modelpilot.release.config.RolloutPolicy` of a canary) and whether a person must
approve::

    triggers:
      - schedule: "0 3 * * *"        # cron, 5 fields, UTC
        cooldown: 1h
      - on_alert: drift
        subject: churn-prod
        daily_budget: 3
    training:
      pipeline: train.py:churn       # relative to this file's folder
      params: {data: churn-train}
      window: 30d                    # passed to the pipeline as the param `window`
    evaluation:
      dataset: churn-test
      target: churned
      gate: gate.yaml
    rollout:
      steps: [5, 25, 50, 100]
    require_approval: true
    monitoring:                      # the agent scores the traffic and records alerts
      window: 1h
      every: 15m
      rules:
        - {name: dataset-drift, metric: drift.share_drifted, op: ">=", threshold: 0.3}

Every error reads ``FILE:LINE: KEY.PATH: what is wrong`` (the line from YAML's node marks).

>>> parse_loop_policy("triggers: [{manual: true}]\\ntraining: {pipeline: t.py:p}\\n"
...                   "evaluation: {dataset: d, target: y, gate: g.yaml}\\nrollot: {}\\n",
...                   source="loop.yaml", check_files=False)
Traceback (most recent call last):
modelpilot.errors.InvalidInput: loop.yaml:4: rollot: unknown key. Did you mean 'rollout'? Known keys: schema_version, triggers, training, evaluation, rollout, require_approval, monitoring.
"""  # noqa: E501

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from modelpilot.alerting.rules import DEFAULT_RULES, AlertRule
from modelpilot.clock import parse_duration_s
from modelpilot.errors import InvalidInput, shown
from modelpilot.evaluation.policy import (
    GatePolicy,
    duplicate_key,
    explain_validation,
    load_policy,
    node_line,
)
from modelpilot.pipelines.triggers import (
    TriggerKind,
    absolute_target,
    check_cron,
    check_limits,
    kind_and_spec,
)
from modelpilot.release.config import RolloutPolicy

DURATION_FORMS = "0, 45s, 30m, 12h, 30d or 2w"


def duration_ms(text: str) -> int:
    """A policy duration (``0``, ``45s``, ``30m``, ``12h``, ``30d``, ``2w``) in milliseconds.

    >>> duration_ms("30d"), duration_ms("0"), duration_ms("1.5h")
    (2592000000, 0, 5400000)
    """
    if text.strip() == "0":
        return 0
    seconds = parse_duration_s(text)
    if seconds is None:
        raise ValueError(f"not a duration: use {DURATION_FORMS}")
    return round(seconds * 1000)


def _duration_text(value: object) -> object:
    if value == 0 and not isinstance(value, bool):
        return "0"
    if not isinstance(value, str):
        raise ValueError(f"not a duration: use {DURATION_FORMS}")
    duration_ms(value)
    return value.strip()


def _positive(text: str) -> str:
    if duration_ms(text) <= 0:
        raise ValueError(f"a window must be longer than 0; use e.g. 7d or 30d, not {text!r}")
    return text


def _positive_interval(text: str) -> str:
    if duration_ms(text) <= 0:
        raise ValueError(f"the interval must be longer than 0; use e.g. 15m or 1h, not {text!r}")
    return text


def _cron(text: str) -> str:
    try:
        return check_cron(text)
    except InvalidInput as exc:
        raise ValueError(exc.message.rstrip(".")) from None


def _limits(max_concurrent: int = 1, daily_budget: int = 1) -> None:
    try:
        check_limits(0, max_concurrent, daily_budget)
    except InvalidInput as exc:
        raise ValueError(exc.message.rstrip(".").replace("-", "_", 1)) from None


Duration = Annotated[str, BeforeValidator(_duration_text)]
Window = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_positive)]
Interval = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_positive_interval)]
Cron = Annotated[str, AfterValidator(_cron)]
Name = Annotated[str, Field(min_length=1, max_length=256)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerSpec(_Section):
    """One condition that starts training (exactly one of ``schedule``, ``on_dataset``,
    ``on_alert`` or ``manual: true``) and its limits."""

    schedule: Cron | None = None
    on_dataset: Name | None = None
    on_alert: Name | None = None
    subject: Name | None = None
    manual: bool = False
    cooldown: Duration = "0"
    max_concurrent: int = 1
    daily_budget: int = 24

    @field_validator("max_concurrent")
    @classmethod
    def _max_concurrent(cls, value: int) -> int:
        _limits(max_concurrent=value)
        return value

    @field_validator("daily_budget")
    @classmethod
    def _daily_budget(cls, value: int) -> int:
        _limits(daily_budget=value)
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> TriggerSpec:
        given = [k for k in ("schedule", "on_dataset", "on_alert") if getattr(self, k)]
        given += ["manual"] if self.manual else []
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise ValueError(
                "give exactly one of schedule (cron), on_dataset (NAME), on_alert (RULE) or "
                f"manual: true; got {got}"
            )
        if self.subject is not None and self.on_alert is None:
            raise ValueError("subject only goes with on_alert: RULE")
        try:
            self.condition()
        except InvalidInput as exc:
            raise ValueError(exc.message.rstrip(".")) from None
        return self

    @property
    def cooldown_ms(self) -> int:
        """The cooldown in milliseconds."""
        return duration_ms(self.cooldown)

    def condition(self) -> tuple[TriggerKind, dict[str, Any]]:
        """The trigger kind and its stored spec, as ``pipelines trigger create`` makes them."""
        return kind_and_spec(self.schedule, self.on_dataset, self.on_alert, self.subject)


class Training(_Section):
    """The pipeline that trains a candidate, its params and the data window."""

    pipeline: str = Field(min_length=1)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    window: Window | None = None

    @model_validator(mode="after")
    def _window_once(self) -> Training:
        if self.window is not None and "window" in self.params:
            raise ValueError("window is given twice (training.window and training.params)")
        return self

    def param_texts(self) -> list[str]:
        """The params as ``NAME=VALUE`` texts (what a trigger stores), the window included."""
        texts = [f"{k}={_text(v)}" for k, v in self.params.items()]
        return texts + ([f"window={self.window}"] if self.window is not None else [])


class Evaluation(_Section):
    """What a candidate is evaluated on (a dataset, or a window of labelled traffic), the
    target column and the gate policy it must pass."""

    dataset: Name | None = None
    window: Window | None = None
    target: Name
    gate: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Evaluation:
        if (self.dataset is None) == (self.window is None):
            raise ValueError(
                "give one of dataset (a dataset name) or window (labelled traffic, e.g. 7d)"
            )
        return self


def _no_actions(rule: AlertRule) -> AlertRule:
    if rule.actions:
        raise ValueError(
            "a monitoring rule calls no hooks (actions); to retrain when it fires, add a "
            f"trigger on_alert: {rule.name}"
        )
    return rule


def _unique_names(rules: list[AlertRule]) -> list[AlertRule]:
    """Each rule's alert state is kept per rule name, so two rules may not share one; the
    error points at the repeated name (its line, not the list's)."""
    names = [r.name for r in rules]
    for index, name in enumerate(names):
        if name in names[:index]:
            first = names.index(name)
            raise ValidationError.from_exception_data(
                "Monitoring",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "value_error",
                            "rule name {name} is used by rule {first} already; each rule "
                            "needs its own name (alerts and on_alert triggers go by it)",
                            {"name": repr(name), "first": first + 1},
                        ),
                        loc=(index, "name"),
                        input=name,
                    )
                ],
            )
    return rules


class Monitoring(_Section):
    """How the agent monitors the deployment: every ``every`` it scores the last ``window`` of
    the logged traffic and checks the alert ``rules`` (by default those of ``monitor run``)."""

    window: Window = "1h"
    every: Interval | None = None
    rules: Annotated[
        list[Annotated[AlertRule, AfterValidator(_no_actions)]], AfterValidator(_unique_names)
    ] = Field(default_factory=lambda: list(DEFAULT_RULES))

    @property
    def window_ms(self) -> int:
        """The window in milliseconds."""
        return duration_ms(self.window)

    @property
    def every_ms(self) -> int:
        """How often the agent monitors, in milliseconds (the window when not given)."""
        return duration_ms(self.every if self.every is not None else self.window)


class LoopPolicy(_Section):
    """A deployment's continuous-training policy."""

    schema_version: Literal[1] = 1
    triggers: list[TriggerSpec] = Field(min_length=1)
    training: Training
    evaluation: Evaluation
    rollout: RolloutPolicy = RolloutPolicy()
    require_approval: bool = False
    monitoring: Monitoring | None = None

    def to_dict(self) -> dict[str, Any]:
        """The policy as JSON-able data (what a stored revision keeps). Unset optional keys
        are left out, except in ``rollout``: there ``null`` turns a guard off (whose default
        is on), so dropping it would switch the guard back on when the revision is read."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        data["rollout"] = self.rollout.model_dump(mode="json")
        return data


@dataclass(frozen=True)
class LoadedPolicy:
    """A checked policy with its paths made absolute, and the text it came from."""

    policy: LoopPolicy
    source: str
    path: str
    gate: GatePolicy | None = None


def _text(value: JsonValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def load_loop_policy(path: str | Path, *, check_files: bool = True) -> LoadedPolicy:
    """Read and check a policy file: its keys, and (``check_files``) that the pipeline
    imports and takes the params, and that the gate policy loads. Paths inside are relative
    to the file's folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"No policy file at {file}. Pass the path of a YAML continuous-training policy "
            "(see docs/continuous-training.md for the schema).",
            field="file",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read policy file {file}: {exc}.", field="file") from exc
    return parse_loop_policy(
        text, source=str(file), base=file.resolve().parent, check_files=check_files
    )


def parse_loop_policy(
    text: str, *, source: str = "<policy>", base: Path | None = None, check_files: bool = True
) -> LoadedPolicy:
    """Check a policy given as YAML text; ``source`` names it in errors, ``base`` is the
    folder relative paths start from (the working folder by default)."""
    root, data = yaml_document(text, source)
    try:
        policy = LoopPolicy.model_validate(data)
    except ValidationError as exc:
        line, path, detail = explain_validation(exc, root, LoopPolicy)
        raise InvalidInput(f"{source}:{line}: {path}: {detail}", field=path) from None
    folder = base if base is not None else Path.cwd()
    policy = _absolute(policy, folder)
    if not check_files:
        return LoadedPolicy(policy, text, source)
    _check_pipeline(policy.training, root, source)
    gate = _check_gate(policy.evaluation, root, source)
    return LoadedPolicy(policy, text, source, gate)


def where_in_policy(loaded: LoadedPolicy, loc: list[str]) -> str:
    """``file:line: key.path`` of a key in a loaded policy's own text, for the checks that
    need the store and so run when the policy is set, not when the file is read.

    >>> text = "triggers: [{manual: true}]\\ntraining: {pipeline: t.py:p}\\nevaluation:\\n" \\
    ...        "  {dataset: d, target: y, gate: g.yaml}\\n"
    >>> where_in_policy(parse_loop_policy(text, check_files=False), ["evaluation", "dataset"])
    '<policy>:4: evaluation.dataset'
    """
    root = yaml.compose(loaded.source, Loader=yaml.SafeLoader)
    line = node_line(root, loc) if root is not None else 1  # a loaded policy is never empty
    return f"{loaded.path}:{line}: {'.'.join(loc)}"


def yaml_document(
    text: str,
    source: str,
    *,
    what: str = "policy",
    needs: str = "triggers, training and evaluation",
) -> tuple[yaml.Node, Any]:
    """A YAML mapping document and its node tree (for line numbers); InvalidInput saying
    ``source:line`` for bad syntax, an empty document, a repeated key or a top level that is
    not a mapping (``what`` names the document, ``needs`` its keys, in those messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise InvalidInput(
            f"{source}:{line}: not valid YAML ({exc.problem}). Fix the syntax there.",
            field=what,
        ) from None
    if root is None:
        raise InvalidInput(f"{source}:1: the {what} is empty; it needs {needs}.", field=what)
    duplicate = duplicate_key(root)
    if duplicate is not None:
        raise InvalidInput(
            f"{source}:{duplicate.start_mark.line + 1}: {duplicate.value}: the key appears twice "
            "in the same mapping; YAML would silently keep the last one. Remove one.",
            field=str(duplicate.value),
        )
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}:{root.start_mark.line + 1}: (top level): expected a mapping with "
            f"{needs}; got {shown(data)}.",
            field=what,
        )
    return root, data


def _absolute(policy: LoopPolicy, folder: Path) -> LoopPolicy:
    target = policy.training.pipeline
    source, sep, attr = target.rpartition(":")
    if sep and (source.endswith(".py") or "/" in source):
        target = absolute_target(f"{folder / Path(source).expanduser()}:{attr}")
    gate = str((folder / Path(policy.evaluation.gate).expanduser()).resolve())
    return policy.model_copy(
        update={
            "training": policy.training.model_copy(update={"pipeline": target}),
            "evaluation": policy.evaluation.model_copy(update={"gate": gate}),
        }
    )


def _check_pipeline(training: Training, root: yaml.Node, source: str) -> None:
    from modelpilot.pipelines.loader import load_target
    from modelpilot.pipelines.params import params_from_text

    try:
        definition = load_target(training.pipeline)
    except InvalidInput as exc:
        raise _at(root, source, ["training", "pipeline"], exc) from None
    try:
        params_from_text(definition, training.param_texts())
    except InvalidInput as exc:
        name = exc.field or ""
        loc = ["training", "window"] if name == "window" and training.window else ["training"]
        loc = ["training", "params", name] if name in training.params else loc
        loc = ["training", "params"] if loc == ["training"] and training.params else loc
        raise _at(root, source, loc, exc) from None


def _check_gate(evaluation: Evaluation, root: yaml.Node, source: str) -> GatePolicy:
    try:
        return load_policy(evaluation.gate)
    except InvalidInput as exc:
        raise _at(root, source, ["evaluation", "gate"], exc) from None


def _at(root: yaml.Node, source: str, loc: list[str], exc: InvalidInput) -> InvalidInput:
    path = ".".join(loc)
    return InvalidInput(f"{source}:{node_line(root, loc)}: {path}: {exc.message}", field=path)


__all__ = [
    "DURATION_FORMS",
    "Evaluation",
    "LoadedPolicy",
    "LoopPolicy",
    "Monitoring",
    "Training",
    "TriggerSpec",
    "duration_ms",
    "load_loop_policy",
    "parse_loop_policy",
    "where_in_policy",
    "yaml_document",
]

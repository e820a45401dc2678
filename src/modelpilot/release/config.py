"""Deployment configuration: typed, validated on write, stored with a schema version.

A configuration is immutable; every change produces a new revision. The data plane routes
from a snapshot of one revision, so swapping revisions never half-applies a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelpilot.errors import InvalidInput

SCHEMA_VERSION = 1
Role = Literal["stable", "canary", "challenger", "shadow"]


class Variant(BaseModel):
    """One model version serving under a deployment, with its role and traffic weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    model: str
    version: int = Field(ge=1)
    role: Role
    weight: int = Field(ge=0, le=100)

    @property
    def ref(self) -> str:
        """``model/version``."""
        return f"{self.model}/{self.version}"


class GuardPolicy(BaseModel):
    """Limits a canary must stay within, compared with the stable variant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_error_rate_increase: float = Field(default=0.02, ge=0, le=1)
    max_p99_latency_ratio: float = Field(default=1.5, gt=1)
    # ...and by at least this much: a 1 ms -> 2 ms p99 is 2x but nobody notices it
    min_p99_latency_increase_ms: float = Field(default=5.0, ge=0)
    max_prediction_psi: float | None = Field(default=0.25, gt=0)
    min_outcome_delta: float | None = None  # e.g. -0.01: canary accuracy may not drop > 1 point


class RolloutPolicy(BaseModel):
    """Steps a canary walks through, the evidence each step needs, and the guards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[int, ...] = (5, 25, 50, 100)
    min_requests_per_step: int = Field(default=200, ge=1)
    min_seconds_per_step: float = Field(default=60.0, ge=0)
    guards: GuardPolicy = GuardPolicy()

    @model_validator(mode="after")
    def _steps_increase_to_100(self) -> RolloutPolicy:
        steps = list(self.steps)
        if (
            not steps
            or any(not 0 < s <= 100 for s in steps)
            or steps != sorted(set(steps))
            or steps[-1] != 100
        ):
            raise ValueError(f"steps must rise strictly from above 0 to exactly 100; got {steps}")
        return self


class DeploymentConfig(BaseModel):
    """What a deployment serves: its variants, the sticky routing key and the rollout policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    variants: tuple[Variant, ...]
    routing_key: str | None = None
    rollout: RolloutPolicy | None = None
    rollout_step: int | None = None  # index into rollout.steps while a canary walks them

    @model_validator(mode="after")
    def _check(self) -> DeploymentConfig:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique; got {names}")
        stable = [v for v in self.variants if v.role == "stable"]
        if len(stable) != 1:
            raise ValueError(f"exactly one variant must be stable; got {len(stable)}")
        for v in self.variants:
            if v.role == "shadow" and v.weight != 0:
                raise ValueError(f"shadow variant {v.name!r} must have weight 0 (it never answers)")
        live = [v for v in self.variants if v.role != "shadow"]
        total = sum(v.weight for v in live)
        if total != 100:
            detail = ", ".join(f"{v.name}={v.weight}" for v in live)
            raise ValueError(f"traffic weights must sum to 100; got {total} ({detail})")
        return self

    @property
    def stable(self) -> Variant:
        """The stable variant."""
        return next(v for v in self.variants if v.role == "stable")

    def candidate(self) -> Variant | None:
        """The canary or challenger, if any."""
        return next((v for v in self.variants if v.role in ("canary", "challenger")), None)

    @property
    def shadows(self) -> list[Variant]:
        """Variants that receive copies of traffic and never answer."""
        return [v for v in self.variants if v.role == "shadow"]


def make_policy(steps: str | Sequence[int], **settings: Any) -> RolloutPolicy | None:
    """A rollout policy from ``"5,25,50,100"`` (or a list) and settings; None for no steps.

    >>> make_policy("10,100").steps
    (10, 100)
    """
    if isinstance(steps, str):
        if not steps.strip():
            return None
        try:
            steps = [int(part) for part in steps.split(",")]
        except ValueError as exc:
            raise InvalidInput(
                f"Rollout steps {steps!r} must be whole percentages such as 5,25,50,100.",
                field="steps",
            ) from exc
    try:
        return RolloutPolicy(steps=tuple(steps), **settings)
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInput(f"Rollout policy: {message}.", field="steps") from exc


def parse_config(data: dict[str, Any], *, deployment: str) -> DeploymentConfig:
    """Validate stored or submitted configuration data, migrating old schema versions."""
    data = migrate_config(dict(data))
    try:
        return DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_explain(exc, deployment), field=_first_field(exc)) from exc


def build_config(variants: Sequence[Variant], *, deployment: str, **extra: Any) -> DeploymentConfig:
    """Build and validate a configuration from variants, with a clear error on any violation."""
    try:
        return DeploymentConfig(variants=tuple(variants), **extra)
    except ValidationError as exc:
        raise InvalidInput(_explain(exc, deployment), field=_first_field(exc)) from exc


def migrate_config(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade configuration data written by older releases (schema version 1 is the first)."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise InvalidInput(
            f"Deployment configuration has schema version {version}, newer than this modelpilot "
            f"understands ({SCHEMA_VERSION}). Upgrade modelpilot."
        )
    return data


def _explain(exc: ValidationError, deployment: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "configuration"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"Deployment {deployment!r}: {message} (at {where})."


def _first_field(exc: ValidationError) -> str | None:
    loc = exc.errors()[0].get("loc", ())
    return ".".join(str(p) for p in loc) or None

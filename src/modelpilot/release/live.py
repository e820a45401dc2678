"""What the release guards see now: each variant's evidence over a window, each guard's check
of the candidate against the stable variant, and what the rollout controller would decide.

The dashboard's deployment page shows this (and refreshes it every few seconds), so it is
built from the controller's own parts: the evidence comes from a
:class:`~modelpilot.release.rollout.StatsSource` (the prediction log, in a server), the checks
from :func:`~modelpilot.release.rollout.guard_checks` and the decision from
:func:`~modelpilot.release.rollout.decide`. Nothing here is a rule of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelpilot.clock import now_ms
from modelpilot.errors import InvalidInput, shown
from modelpilot.release.config import GuardPolicy, Variant
from modelpilot.release.entities import Deployment
from modelpilot.release.rollout import (
    Decision,
    GuardCheck,
    StatsSource,
    VariantStats,
    decide,
    guard_checks,
    step_started_ms,
)

# The windows offered; ``revision`` is the controller's own (since the current revision).
WINDOWS_MS: dict[str, int | None] = {
    "revision": None,
    "15m": 15 * 60_000,
    "1h": 3_600_000,
    "24h": 86_400_000,
}


@dataclass(frozen=True)
class VariantLive:
    """One variant and its evidence in the window."""

    variant: Variant
    stats: VariantStats


@dataclass(frozen=True)
class LiveGuards:
    """A deployment's guard view over ``[since_ms, until_ms)``."""

    deployment: str
    revision: int
    window: str
    since_ms: int
    until_ms: int
    variants: list[VariantLive]
    guards: GuardPolicy
    has_policy: bool  # a rollout policy: a breached guard rolls the candidate back
    candidate: Variant | None
    checks: list[GuardCheck]  # the candidate against the stable variant; [] without one
    decision: Decision | None  # the controller's, in its own window under a policy only


def live_guards(
    deployment: Deployment,
    source: StatsSource,
    *,
    window: str = "revision",
    at_ms: int | None = None,
) -> LiveGuards:
    """Evidence and guard checks for ``deployment`` now (``at_ms``), over ``window``.

    Without a rollout policy the default :class:`GuardPolicy` is checked (what ``modelpilot
    deploy canary --steps`` would apply) but nothing acts on it.

    >>> from modelpilot.release.config import DeploymentConfig
    >>> config = DeploymentConfig(variants=(Variant(name="stable", model="m", version=1,
    ...     role="stable", weight=100),))
    >>> class NoTraffic:
    ...     def variant_stats(self, *args): return VariantStats()
    >>> view = live_guards(Deployment("d", 1, config, 0), NoTraffic(), at_ms=60_000)
    >>> [v.stats.requests for v in view.variants], view.checks, view.decision
    ([0], [], None)
    """
    until = at_ms if at_ms is not None else now_ms()
    since = window_start(deployment, window, until)
    config = deployment.config
    variants = [
        VariantLive(v, source.variant_stats(deployment.name, v.name, since, until))
        for v in config.variants
    ]
    by_name = {v.variant.name: v.stats for v in variants}
    candidate = config.candidate()
    guards = config.rollout.guards if config.rollout is not None else GuardPolicy()
    checks: list[GuardCheck] = []
    decision = None
    if candidate is not None:
        stable, canary = by_name[config.stable.name], by_name[candidate.name]
        checks = guard_checks(guards, stable, canary)
        if config.rollout is not None and config.rollout_step is not None and window == "revision":
            age_s = (until - since) / 1000
            decision = decide(config.rollout, config.rollout_step, age_s, stable, canary)
    return LiveGuards(
        deployment.name,
        deployment.revision,
        window,
        since,
        until,
        variants,
        guards,
        config.rollout is not None,
        candidate,
        checks,
        decision,
    )


def window_start(deployment: Deployment, window: str, until_ms: int) -> int:
    """Where ``window`` begins; InvalidInput naming the windows offered for another name."""
    if window not in WINDOWS_MS:
        raise InvalidInput(
            f"Window {shown(window)} is not offered; choose one of {', '.join(WINDOWS_MS)}.",
            field="window",
        )
    span = WINDOWS_MS[window]
    return step_started_ms(deployment) if span is None else until_ms - span

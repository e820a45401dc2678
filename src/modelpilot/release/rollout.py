"""The rollout controller: advance a canary step by step, promote it, or roll it back.

``decide`` is a pure function of the policy and the evidence, so every rule is testable
without a server; ``tick`` reads the deployment through a
:class:`~modelpilot.release.protocol.DeploymentService`, asks a :class:`StatsSource` for the
evidence since the current step began, and applies the decision as a new revision (based on
the revision it read, so a person's concurrent change always wins).

The service is local (a store) or ``modelpilot server`` over HTTP, and the evidence is the
prediction log of the home the data plane writes: a controller next to a model server that
follows a control plane reads that server's log and changes the control plane's deployment,
as the identity of its token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from modelpilot.clock import now_ms
from modelpilot.release.config import GuardPolicy, RolloutPolicy
from modelpilot.release.entities import Deployment
from modelpilot.release.protocol import DeploymentService

MIN_GUARD_REQUESTS = 30  # below this a guard has too little evidence to act on
# False-rollback rate of the latency test per look. Low because the controller looks at every
# tick and a false rollback costs a release, while a real 3x slowdown gives p < 1e-20.
LATENCY_ALPHA = 0.001
_TAIL_QUANTILE = 0.95  # the pooled quantile whose exceedances the latency test counts
_Z_ONE_SIDED_99 = 2.326


@dataclass(frozen=True)
class VariantStats:
    """Evidence about one variant over a window of time."""

    requests: int = 0
    errors: int = 0
    p99_latency_ms: float | None = None
    predictions: np.ndarray | None = field(default=None, repr=False)
    outcome_mean: float | None = None
    outcome_count: int = 0
    latencies_ms: np.ndarray | None = field(default=None, repr=False)  # a per-request sample
    p50_latency_ms: float | None = None  # shown with the guards; no guard acts on it

    @property
    def error_rate(self) -> float:
        """Errors per request (0 with no requests)."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Decision:
    """What the controller does now, and why (written into the deployment history)."""

    action: Literal["hold", "advance", "promote", "rollback"]
    reason: str


class StatsSource(Protocol):
    """Where evidence comes from (the prediction log and joined labels, in production)."""

    def variant_stats(
        self, deployment: str, variant: str, since_ms: int, until_ms: int
    ) -> VariantStats:
        """Evidence for one variant in ``[since_ms, until_ms)``."""
        ...


def decide(
    policy: RolloutPolicy, step: int, step_age_s: float, stable: VariantStats, canary: VariantStats
) -> Decision:
    """The controller's rule: guards first (any failure rolls back), then the step's gates.

    >>> p = RolloutPolicy(steps=(50, 100), min_requests_per_step=10, min_seconds_per_step=0)
    >>> decide(p, 0, 5.0, VariantStats(100, 0), VariantStats(100, 30)).action
    'rollback'
    >>> decide(p, 1, 5.0, VariantStats(100, 0), VariantStats(100, 0)).action
    'promote'
    """
    failure = guard_failure(policy.guards, stable, canary)
    if failure is not None:
        return Decision("rollback", failure)
    weight = policy.steps[step]
    if canary.requests < policy.min_requests_per_step:
        return Decision(
            "hold",
            f"step {step + 1} ({weight}%): {canary.requests}/"
            f"{policy.min_requests_per_step} requests so far",
        )
    if step_age_s < policy.min_seconds_per_step:
        return Decision(
            "hold",
            f"step {step + 1} ({weight}%): {step_age_s:.0f}/"
            f"{policy.min_seconds_per_step:.0f} s so far",
        )
    if step >= len(policy.steps) - 1:
        return Decision("promote", f"all {len(policy.steps)} steps passed their guards")
    return Decision(
        "advance",
        f"step {step + 1} ({weight}%) passed with {canary.requests} requests; "
        f"moving to {policy.steps[step + 1]}%",
    )


GuardStatus = Literal["ok", "breached", "waiting", "off"]


@dataclass(frozen=True)
class GuardCheck:
    """One guard's look at the canary: the figure it compared, its limit, and a word.

    ``breached`` rolls the canary back (``reason`` is the sentence the rollback records);
    ``waiting`` means too little evidence to judge yet and ``off`` a guard the policy does not
    set, each with ``reason`` saying so. The dashboard shows these, so a person sees exactly
    what the controller sees.
    """

    guard: str  # "error rate", "p99 latency", "prediction drift", "outcome"
    value: str
    limit: str
    status: GuardStatus
    reason: str = ""


def guard_checks(
    guards: GuardPolicy, stable: VariantStats, canary: VariantStats
) -> list[GuardCheck]:
    """Every guard's check of the canary against the stable variant, in the order the
    controller applies them (the first ``breached`` one is the rollback's reason).

    >>> checks = guard_checks(GuardPolicy(), VariantStats(100, 0), VariantStats(100, 30))
    >>> [(c.guard, c.status) for c in checks]  # doctest: +NORMALIZE_WHITESPACE
    [('error rate', 'breached'), ('p99 latency', 'waiting'), ('prediction drift', 'waiting'),
     ('outcome', 'off')]
    """
    return [
        error_check(guards, stable, canary),
        latency_check(guards, stable, canary),
        drift_check(guards, stable, canary),
        outcome_check(guards, stable, canary),
    ]


def guard_failure(guards: GuardPolicy, stable: VariantStats, canary: VariantStats) -> str | None:
    """The first guard the canary fails, as a sentence, or None."""
    for check in guard_checks(guards, stable, canary):
        if check.status == "breached":
            return check.reason
    return None


def _too_few(guard: str, limit: str, n: int) -> GuardCheck:
    return GuardCheck(
        guard, "—", limit, "waiting", f"{n} of the {MIN_GUARD_REQUESTS} requests it needs so far"
    )


def error_check(guards: GuardPolicy, stable: VariantStats, canary: VariantStats) -> GuardCheck:
    """The canary's error rate, at least (Wilson, 99%), against the stable's plus the margin."""
    limit = stable.error_rate + guards.max_error_rate_increase
    limit_text = (
        f"lower bound at most {limit:.1%} (stable {stable.error_rate:.1%} + "
        f"{guards.max_error_rate_increase:.1%})"
    )
    if canary.requests < MIN_GUARD_REQUESTS:
        return _too_few("error rate", limit_text, canary.requests)
    lower = wilson_lower(canary.errors, canary.requests)
    value = f"{canary.error_rate:.1%} (at least {lower:.1%} with 99% confidence)"
    if lower <= limit:
        return GuardCheck("error rate", value, limit_text, "ok")
    return GuardCheck(
        "error rate",
        value,
        limit_text,
        "breached",
        f"error rate {canary.error_rate:.1%} over {canary.requests} requests (at least "
        f"{lower:.1%} with 99% confidence) exceeds the stable {stable.error_rate:.1%} + "
        f"{guards.max_error_rate_increase:.1%}",
    )


def latency_check(guards: GuardPolicy, stable: VariantStats, canary: VariantStats) -> GuardCheck:
    """:func:`latency_failure` as a check with the figures it compared."""
    limit = (
        f"at most {guards.max_p99_latency_ratio:g}x the stable or under "
        f"+{guards.min_p99_latency_increase_ms:g} ms; else tail test p >= {LATENCY_ALPHA:g}"
    )
    if min(stable.requests, canary.requests) < MIN_GUARD_REQUESTS:
        return _too_few("p99 latency", limit, min(stable.requests, canary.requests))
    c99, s99 = canary.p99_latency_ms, stable.p99_latency_ms
    if c99 is None or not s99:
        return GuardCheck("p99 latency", "—", limit, "waiting", "no latencies logged")
    value = f"{c99:.1f} ms, {c99 / s99:.2f}x the stable {s99:.1f} ms ({c99 - s99:+.1f} ms)"
    failure = latency_failure(guards, stable, canary)
    if failure is None:
        return GuardCheck("p99 latency", value, limit, "ok")
    return GuardCheck("p99 latency", value, limit, "breached", failure)


def drift_check(guards: GuardPolicy, stable: VariantStats, canary: VariantStats) -> GuardCheck:
    """The canary's predictions against the stable's: PSI net of sampling noise, and the
    permutation test (:func:`prediction_shift`)."""
    if guards.max_prediction_psi is None:
        return GuardCheck("prediction drift", "—", "not set", "off", "no PSI limit in the policy")
    limit = f"PSI above noise at most {guards.max_prediction_psi:g}, or p > {PSI_ALPHA:g}"
    if canary.requests < MIN_GUARD_REQUESTS:
        return _too_few("prediction drift", limit, canary.requests)
    if canary.predictions is None or stable.predictions is None:
        return GuardCheck("prediction drift", "—", limit, "waiting", "no scores logged")
    smaller = min(canary.predictions.size, stable.predictions.size)
    if smaller < MIN_GUARD_REQUESTS:
        return _too_few("prediction drift", limit, smaller)
    shift = prediction_shift(stable.predictions, canary.predictions)
    value = (
        f"PSI {shift.psi:.3f}, {shift.excess:.3f} above the noise {shift.noise:.3f}; "
        f"permutation p = {shift.p_value:.4f}"
    )
    if shift.excess <= guards.max_prediction_psi or shift.p_value > PSI_ALPHA:
        return GuardCheck("prediction drift", value, limit, "ok")
    return GuardCheck(
        "prediction drift",
        value,
        limit,
        "breached",
        "prediction distribution drifted from the stable variant's "
        f"(PSI {shift.psi:.3f}, {shift.excess:.3f} above the {shift.noise:.3f} that "
        f"sampling noise gives at these counts > {guards.max_prediction_psi}; "
        f"permutation p = {shift.p_value:.4f})",
    )


def outcome_check(guards: GuardPolicy, stable: VariantStats, canary: VariantStats) -> GuardCheck:
    """The canary's mean outcome minus the stable's, against ``min_outcome_delta``."""
    if guards.min_outcome_delta is None:
        return GuardCheck("outcome", "—", "not set", "off", "no outcome limit in the policy")
    limit = f"at least {guards.min_outcome_delta:+.4g} against the stable"
    if canary.outcome_mean is None or stable.outcome_mean is None:
        return GuardCheck("outcome", "—", limit, "waiting", "no outcomes joined yet")
    smaller = min(canary.outcome_count, stable.outcome_count)
    if smaller < MIN_GUARD_REQUESTS:
        return _too_few("outcome", limit, smaller)
    delta = canary.outcome_mean - stable.outcome_mean
    value = f"{canary.outcome_mean:.4g} ({delta:+.4g} against the stable)"
    if delta >= guards.min_outcome_delta:
        return GuardCheck("outcome", value, limit, "ok")
    return GuardCheck(
        "outcome",
        value,
        limit,
        "breached",
        f"outcome metric {canary.outcome_mean:.4g} is {delta:+.4g} against the stable "
        f"variant (limit {guards.min_outcome_delta:+.4g})",
    )


def latency_failure(guards: GuardPolicy, stable: VariantStats, canary: VariantStats) -> str | None:
    """Why the canary is too slow, or None: its p99 must exceed the stable's by the ratio AND
    by ``min_p99_latency_increase_ms``, with at least ``MIN_GUARD_REQUESTS`` each, and (when
    the evidence carries latency samples) the tail test must be significant.

    A p99 over a hundred canary requests is close to their maximum, so one GC pause moves it
    by 5x; the ratio alone rolled back equally fast canaries in 12 of 20 seeded runs (see
    tests/unit/release/test_latency_guard.py). The test counts each variant's requests above
    the pooled 95th percentile; if both variants had the same latency distribution, which
    requests land there would be random, so Fisher's exact test (one-sided) says how
    surprising the canary's share is.

    >>> rng = np.random.default_rng(0)
    >>> fast, slow = rng.lognormal(np.log(6), 0.3, 500), rng.lognormal(np.log(18), 0.3, 100)
    >>> def s(x): return VariantStats(x.size, 0, float(np.percentile(x, 99)), latencies_ms=x)
    >>> latency_failure(GuardPolicy(), s(fast), s(fast[:100])) is None
    True
    >>> latency_failure(GuardPolicy(), s(fast), s(slow))[:40]
    'p99 latency 31.6 ms is 2.79x the stable '
    """
    c99, s99 = canary.p99_latency_ms, stable.p99_latency_ms
    if min(stable.requests, canary.requests) < MIN_GUARD_REQUESTS or c99 is None or not s99:
        return None
    ratio, increase = c99 / s99, c99 - s99
    if ratio <= guards.max_p99_latency_ratio or increase < guards.min_p99_latency_increase_ms:
        return None
    rule = (
        f"p99 latency {c99:.1f} ms is {ratio:.2f}x the stable {s99:.1f} ms ({increase:+.1f} ms; "
        f"limits {guards.max_p99_latency_ratio:g}x and +{guards.min_p99_latency_increase_ms:g} ms"
    )
    if stable.latencies_ms is None or canary.latencies_ms is None:
        return f"{rule})"
    tail = tail_test(stable.latencies_ms, canary.latencies_ms)
    if tail.p_value >= LATENCY_ALPHA:
        return None
    return (
        f"{rule}; {tail.canary_above} of {tail.canary_n} canary vs {tail.stable_above} of "
        f"{tail.stable_n} stable requests above the pooled p95 {tail.threshold_ms:.1f} ms, "
        f"one-sided Fisher p={tail.p_value:.2g} < {LATENCY_ALPHA:g})"
    )


@dataclass(frozen=True)
class TailTest:
    """How many requests of each variant exceed the pooled tail threshold, and the p-value."""

    threshold_ms: float
    stable_above: int
    stable_n: int
    canary_above: int
    canary_n: int
    p_value: float


def tail_test(stable_ms: np.ndarray, canary_ms: np.ndarray) -> TailTest:
    """One-sided Fisher exact test: does the canary put more requests in the slow tail?

    Exact under the null (same distribution) whatever the shape, so heavy tails and GC pauses
    cannot fool it; too few samples (under ``MIN_GUARD_REQUESTS``) give p = 1.

    >>> rng = np.random.default_rng(1)
    >>> round(tail_test(rng.exponential(5, 400), rng.exponential(5, 400)).p_value, 2)
    0.13
    """
    from scipy.stats import fisher_exact

    stable_ms, canary_ms = np.asarray(stable_ms, float), np.asarray(canary_ms, float)
    if min(stable_ms.size, canary_ms.size) < MIN_GUARD_REQUESTS:
        return TailTest(math.nan, 0, stable_ms.size, 0, canary_ms.size, 1.0)
    threshold = float(np.quantile(np.concatenate([stable_ms, canary_ms]), _TAIL_QUANTILE))
    s_above, c_above = int((stable_ms > threshold).sum()), int((canary_ms > threshold).sum())
    table = [[c_above, canary_ms.size - c_above], [s_above, stable_ms.size - s_above]]
    p_value = float(fisher_exact(table, alternative="greater")[1])
    return TailTest(threshold, s_above, stable_ms.size, c_above, canary_ms.size, p_value)


def wilson_lower(successes: int, n: int, z: float = _Z_ONE_SIDED_99) -> float:
    """Lower end of the Wilson score interval for a proportion.

    >>> round(wilson_lower(10, 50), 3)
    0.101
    """
    if n == 0:
        return 0.0
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / denom)


PSI_ALPHA = 0.002  # the controller looks at every tick, so each look must be strict
_PERMUTATIONS = 499  # the smallest p-value is 1/500 = PSI_ALPHA; ~40 ms per look


@dataclass(frozen=True)
class PredictionShift:
    """The canary's PSI against the stable variant, net of what sampling noise gives."""

    psi: float
    noise: float  # mean PSI between random splits of the pooled predictions (the noise floor)
    p_value: float  # share of random splits with a PSI at least as large

    @property
    def excess(self) -> float:
        """PSI beyond the noise floor: the part a real change in predictions explains."""
        return self.psi - self.noise


def prediction_shift(
    reference: np.ndarray, current: np.ndarray, *, seed: int = 0
) -> PredictionShift:
    """PSI with a permutation test: with a few hundred predictions PSI is biased upwards
    (about ``(bins - 1) * (1/n + 1/m)`` between two samples of one distribution, ~0.15 at 84
    and 216), so a raw threshold rolls healthy canaries back. The guard acts on the PSI above
    that noise floor, and only when random splits of the pooled predictions rarely reach it.

    >>> rng = np.random.default_rng(0)
    >>> same = prediction_shift(rng.normal(size=216), rng.normal(size=84))
    >>> bool(same.psi > 0.05 and same.excess < 0.25 and same.p_value > PSI_ALPHA)
    True
    >>> moved = prediction_shift(rng.normal(size=216), rng.normal(2.0, 1.0, size=84))
    >>> bool(moved.excess > 0.25 and moved.p_value <= PSI_ALPHA)
    True
    """
    observed = prediction_psi(reference, current)
    pooled = np.concatenate([reference, current])
    rng = np.random.default_rng(seed)
    null = np.empty(_PERMUTATIONS)
    for i in range(_PERMUTATIONS):
        shuffled = rng.permutation(pooled)
        null[i] = prediction_psi(shuffled[: reference.size], shuffled[reference.size :])
    p_value = (1 + int(np.sum(null >= observed))) / (1 + _PERMUTATIONS)
    return PredictionShift(observed, float(null.mean()), p_value)


def prediction_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of two prediction samples over the reference's deciles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        return 0.0 if np.allclose(current, reference[0]) else math.inf
    ref_counts = np.histogram(np.clip(reference, edges[0], edges[-1]), edges)[0]
    cur_counts = np.histogram(np.clip(current, edges[0], edges[-1]), edges)[0]
    eps = 1e-4
    ref_p = np.maximum(ref_counts / ref_counts.sum(), eps)
    cur_p = np.maximum(cur_counts / cur_counts.sum(), eps)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def tick(
    deployments: DeploymentService,
    name: str,
    source: StatsSource,
    *,
    at_ms: int | None = None,
) -> Decision:
    """Run the controller once for a deployment and apply its decision through ``deployments``.

    A change is based on the revision read here (``expected_revision``), so a concurrent
    change by a person wins and this tick's change is refused with ``Conflict``.
    """
    deployment = deployments.get_deployment(name)
    config = deployment.config
    candidate = config.candidate()
    if candidate is None or config.rollout is None or config.rollout_step is None:
        return Decision("hold", "no canary under a rollout policy")
    now = at_ms if at_ms is not None else now_ms()
    started = step_started_ms(deployment)
    stable_stats = source.variant_stats(name, config.stable.name, started, now)
    canary_stats = source.variant_stats(name, candidate.name, started, now)
    decision = decide(
        config.rollout, config.rollout_step, (now - started) / 1000, stable_stats, canary_stats
    )
    _apply(deployments, deployment, decision)
    return decision


def step_started_ms(deployment: Deployment) -> int:
    """When the evidence the controller judges begins: the current revision's time (every
    change, a step included, starts a new window)."""
    return deployment.updated_ms


def _apply(deployments: DeploymentService, deployment: Deployment, decision: Decision) -> None:
    name, revision = deployment.name, deployment.revision
    if decision.action == "advance":
        deployments.advance_step(name, reason=decision.reason, expected_revision=revision)
    elif decision.action == "promote":
        deployments.promote(
            name, reason=decision.reason, automatic=True, expected_revision=revision
        )
    elif decision.action == "rollback":
        deployments.rollback(
            name,
            reason=f"guard failed: {decision.reason}",
            automatic=True,
            expected_revision=revision,
        )

"""When ``modelpilot serve --replicas MIN:MAX`` adds or removes a replica: queue depth per replica.

The rule (the same signal as the Kubernetes HPA in ``deploy/k8s/data-plane.yaml``): every
poll, the supervisor reads each replica's ``modelpilot_queue_depth_rows`` (rows waiting for
a batch, summed over the replica's models) and takes the mean over the replicas that
answered. One replica is added when that mean has stayed above ``target_queue_rows`` for
``scale_up_delay_s``; one is removed when it has stayed below ``scale_down_fraction`` of the
target for ``scale_down_delay_s``. Any change restarts both clocks, so two changes are never
closer than the delay of the second, and the count never leaves ``[min, max]``.

Why one step at a time and a longer delay down: a new replica needs seconds to load its
models, and a removed one has to drain; stepping by one and waiting a full delay after
each step lets the previous step show in the queue before the next is decided, and a load
that dips for a moment does not cost a replica that must be started again.

The decision is a plain object fed ``(now, mean depth)``: no clock, no I/O, so tests drive
it with any clock they like.

>>> rule = ScalingRule(1, 3, target_queue_rows=32, scale_up_delay_s=10, scale_down_delay_s=60)
>>> scaler = Autoscaler(rule, replicas=1)
>>> [scaler.observe(t, 50.0) for t in (0.0, 5.0, 10.0, 15.0, 25.0)]
[1, 1, 2, 2, 3]
>>> [scaler.observe(t, 0.0) for t in (26.0, 86.0, 87.0, 147.0)]
[3, 2, 2, 1]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from modelpilot.errors import InvalidInput

QUEUE_METRIC = "modelpilot_queue_depth_rows"
_RANGE = re.compile(r"\s*(\d+)\s*(?::\s*(\d+)\s*)?")


@dataclass(frozen=True)
class ReplicaRange:
    """How many replicas: a fixed count (``4``) or an autoscaled range (``2:8``)."""

    min_replicas: int
    max_replicas: int

    @property
    def is_autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    def __str__(self) -> str:
        if self.is_autoscaled:
            return f"{self.min_replicas}:{self.max_replicas}"
        return str(self.min_replicas)


def parse_replica_range(text: str) -> ReplicaRange:
    """``--replicas``: ``N`` (N replicas) or ``MIN:MAX`` (autoscaled, 1 <= MIN <= MAX).

    >>> parse_replica_range("2:8"), parse_replica_range("4")
    (ReplicaRange(min_replicas=2, max_replicas=8), ReplicaRange(min_replicas=4, max_replicas=4))
    """
    found = _RANGE.fullmatch(text)
    if found is None:
        raise InvalidInput(
            f"--replicas must be a count (4) or a range MIN:MAX (2:8); got {text!r}.",
            field="replicas",
        )
    low = int(found.group(1))
    high = int(found.group(2)) if found.group(2) is not None else low
    if not 1 <= low <= high:
        raise InvalidInput(
            f"--replicas {text}: need 1 <= MIN <= MAX (a count of at least 1).", field="replicas"
        )
    return ReplicaRange(low, high)


@dataclass(frozen=True)
class ScalingRule:
    """Bounds, target and delays of the autoscaler (validated at the CLI's edge)."""

    min_replicas: int
    max_replicas: int
    target_queue_rows: float = 32.0
    scale_up_delay_s: float = 10.0
    scale_down_delay_s: float = 60.0
    scale_down_fraction: float = 0.5

    @property
    def poll_s(self) -> float:
        """How often the supervisor reads the queues: every second, or four times per
        scale-up delay when that is shorter (not under 0.1 s), so a streak is judged on
        several readings."""
        return max(0.1, min(1.0, self.scale_up_delay_s / 4))


class Autoscaler:
    """The replica count the queue depth asks for, one step per delay at most.

    ``observe`` is fed the mean depth per replica at time ``now`` (monotonic seconds; None
    when no replica could be read, which ends both streaks: no decision without evidence)
    and returns the count wanted now.
    """

    def __init__(self, rule: ScalingRule, *, replicas: int) -> None:
        self.rule = rule
        self.replicas = replicas
        self.above_since: float | None = None
        self.below_since: float | None = None

    def observe(self, now: float, mean_depth: float | None) -> int:
        """Record one reading; return the replica count wanted (changed by at most one)."""
        rule = self.rule
        if mean_depth is None:
            self.above_since = self.below_since = None
            return self.replicas
        if mean_depth > rule.target_queue_rows:
            self.below_since = None
            self.above_since = now if self.above_since is None else self.above_since
            if now - self.above_since >= rule.scale_up_delay_s:
                self._step(+1, now)
        elif mean_depth < rule.target_queue_rows * rule.scale_down_fraction:
            self.above_since = None
            self.below_since = now if self.below_since is None else self.below_since
            if now - self.below_since >= rule.scale_down_delay_s:
                self._step(-1, now)
        else:
            self.above_since = self.below_since = None
        return self.replicas

    def _step(self, by: int, now: float) -> None:
        wanted = min(max(self.replicas + by, self.rule.min_replicas), self.rule.max_replicas)
        if wanted != self.replicas:
            self.replicas = wanted
            self.above_since = self.below_since = None  # a change restarts both clocks


def queue_depth_from_metrics(text: str) -> float:
    """Rows waiting in one replica, summed over its models, from its ``/metrics`` text.

    >>> queue_depth_from_metrics(
    ...     'modelpilot_queue_depth_rows{model="a",version="1"} 3.0\\n'
    ...     'modelpilot_queue_depth_rows{model="b",version="2"} 4.0\\n'
    ... )
    7.0
    """
    # Imported here: the CLI imports this module for --replicas, and only the supervisor reads.
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == QUEUE_METRIC
        for sample in family.samples
    )


def read_queue_depth(url: str, *, token: str | None = None, timeout_s: float = 1.0) -> float | None:
    """One replica's queue depth from ``url`` (its own port's ``/metrics``, with ``token``
    for a server run with ``--require-token``); None when it cannot be read (still starting,
    draining, or refusing), so it is left out of the mean."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        reply = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    return queue_depth_from_metrics(reply.text) if reply.status_code == 200 else None

"""Routing snapshots: weights, stickiness, shadows."""

from __future__ import annotations

import random
from collections import Counter

from modelpilot.serving.routing import Route, RoutingSnapshot, sticky_bucket

SNAP = RoutingSnapshot(
    "churn-prod",
    3,
    (
        Route("stable", "stable", "churn", 1, 90),
        Route("canary", "canary", "churn", 2, 10),
        Route("shadow", "shadow", "churn", 3, 0),
    ),
    "user_id",
)


def test_a_routing_key_always_gets_the_same_variant() -> None:
    picks = {SNAP.pick("user-7", random.Random(seed)).variant for seed in range(20)}
    assert len(picks) == 1
    assert 0 <= sticky_bucket("churn-prod", "user-7") < 10_000


def test_random_assignment_follows_weights_and_never_picks_a_shadow() -> None:
    rng = random.Random(0)
    counts = Counter(SNAP.pick(None, rng).variant for _ in range(10_000))
    assert set(counts) == {"stable", "canary"}
    assert 800 < counts["canary"] < 1200
    assert [r.variant for r in SNAP.shadows] == ["shadow"]


def test_a_zero_weight_variant_gets_no_traffic() -> None:
    snap = RoutingSnapshot(
        "d", 1, (Route("a", "stable", "m", 1, 100), Route("b", "canary", "m", 2, 0)), None
    )
    rng = random.Random(1)
    assert {snap.pick(None, rng).variant for _ in range(2_000)} == {"a"}

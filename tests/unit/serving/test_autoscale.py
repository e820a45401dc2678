"""The autoscaler's rule for ``modelpilot serve --replicas MIN:MAX``, driven by an injected clock.

Readings are (time, mean queue depth per replica) pairs; no test sleeps. The supervisor that
acts on the decisions runs with real processes in
tests/integration/serving/test_serving_autoscale.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.serving.autoscale import (
    Autoscaler,
    ReplicaRange,
    ScalingRule,
    parse_replica_range,
    queue_depth_from_metrics,
)

TARGET = 32.0


@st.composite
def rules(draw: st.DrawFn) -> ScalingRule:
    low = draw(st.integers(1, 5))
    return ScalingRule(
        low,
        draw(st.integers(low, low + 5)),
        target_queue_rows=TARGET,
        scale_up_delay_s=draw(st.floats(0.0, 30.0)),
        scale_down_delay_s=draw(st.floats(0.0, 120.0)),
    )


# Gaps between readings and depths around the thresholds (16 and 32 rows), None = unreadable.
readings = st.lists(
    st.tuples(st.floats(0.01, 20.0), st.one_of(st.none(), st.floats(0.0, 100.0))), max_size=80
)


@st.composite
def traces(draw: st.DrawFn) -> tuple[ScalingRule, list[tuple]]:
    """A rule, a starting count within its bounds, and the trace of a run of readings."""
    rule = draw(rules())
    start = draw(st.integers(rule.min_replicas, rule.max_replicas))
    return rule, _run(rule, start, draw(readings))


def _run(rule: ScalingRule, start: int, seq: list[tuple[float, float | None]]) -> list[tuple]:
    """Feed the readings; return (time, depth, count before, count after) per reading."""
    scaler = Autoscaler(rule, replicas=start)
    now, trace = 0.0, []
    for gap, depth in seq:
        now += gap
        before = scaler.replicas
        trace.append((now, depth, before, scaler.observe(now, depth)))
    return trace


@given(case=traces())
def test_the_count_stays_within_bounds_and_moves_one_step_at_a_time(
    case: tuple[ScalingRule, list[tuple]],
) -> None:
    rule, trace = case
    for _, _, before, after in trace:
        assert rule.min_replicas <= after <= rule.max_replicas
        assert abs(after - before) <= 1


@given(case=traces())
def test_changes_never_come_faster_than_their_delay(case: tuple[ScalingRule, list[tuple]]) -> None:
    rule, trace = case
    last_change = trace[0][0] if trace else 0.0  # the first reading starts the clocks
    for now, _, before, after in trace:
        if after > before:
            assert now - last_change >= rule.scale_up_delay_s
        if after < before:
            assert now - last_change >= rule.scale_down_delay_s
        if after != before:
            last_change = now


@given(case=traces())
def test_a_change_follows_a_whole_delay_of_readings_on_its_side(
    case: tuple[ScalingRule, list[tuple]],
) -> None:
    rule, trace = case
    for i, (now, _, before, after) in enumerate(trace):
        if after == before:
            continue
        delay = rule.scale_up_delay_s if after > before else rule.scale_down_delay_s
        window = [depth for t, depth, _, _ in trace[: i + 1] if now - t <= delay]
        if after > before:
            assert all(d is not None and d > TARGET for d in window)
        else:
            assert all(d is not None and d < TARGET * rule.scale_down_fraction for d in window)


@given(rule=rules(), data=st.data(), step_s=st.floats(0.1, 5.0))
def test_sustained_load_reaches_the_maximum_and_idleness_the_minimum(
    rule: ScalingRule, data: st.DataObject, step_s: float
) -> None:
    start = data.draw(st.integers(rule.min_replicas, rule.max_replicas))
    depth = data.draw(st.floats(TARGET + 0.01, 10_000.0))
    span = rule.max_replicas - rule.min_replicas + 1
    up_steps = int(span * (rule.scale_up_delay_s / step_s + 3)) + 1
    loaded = _run(rule, start, [(step_s, depth)] * up_steps)
    assert loaded[-1][3] == rule.max_replicas

    idle = data.draw(st.floats(0.0, TARGET * rule.scale_down_fraction - 0.01))
    down_steps = int(span * (rule.scale_down_delay_s / step_s + 3)) + 1
    quiet = _run(rule, rule.max_replicas, [(step_s, idle)] * down_steps)
    assert quiet[-1][3] == rule.min_replicas


def test_a_load_between_the_thresholds_holds_the_count() -> None:
    rule = ScalingRule(1, 4, target_queue_rows=TARGET, scale_up_delay_s=1, scale_down_delay_s=1)
    trace = _run(rule, 2, [(1.0, 20.0)] * 100)  # between 16 (half the target) and 32
    assert {after for *_, after in trace} == {2}


@given(low=st.integers(1, 10_000), extra=st.integers(0, 10_000))
def test_replica_ranges_parse_and_print_back(low: int, extra: int) -> None:
    parsed = parse_replica_range(f"{low}:{low + extra}")
    assert parsed == ReplicaRange(low, low + extra)
    assert parse_replica_range(str(parsed)) == parsed
    assert parse_replica_range(str(low)) == ReplicaRange(low, low)


@given(text=st.text(max_size=12))
def test_any_replica_text_is_a_valid_range_or_refused_by_name(text: str) -> None:
    try:
        parsed = parse_replica_range(text)
    except InvalidInput as exc:
        assert "--replicas" in exc.message
        return
    assert 1 <= parsed.min_replicas <= parsed.max_replicas


@pytest.mark.parametrize("text", ["0", "3:2", "2-8", "1:", ":4", "two"])
def test_bad_replica_counts_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="--replicas"):
        parse_replica_range(text)


def test_queue_depth_sums_every_model_of_a_replica_and_ignores_other_metrics() -> None:
    text = (
        "# TYPE modelpilot_queue_depth_rows gauge\n"
        'modelpilot_queue_depth_rows{model="churn",version="1"} 12.0\n'
        'modelpilot_queue_depth_rows{model="churn",version="2"} 30.0\n'
        'modelpilot_requests_total{model="churn",version="1",code="200"} 900.0\n'
    )
    assert queue_depth_from_metrics(text) == 42.0

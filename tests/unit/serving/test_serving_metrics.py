"""Prometheus metrics: conventional names, a registry per app, labels per model and version."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from modelpilot.serving.metrics import LATENCY_BUCKETS, ServingMetrics


def test_families_follow_prometheus_naming_and_stay_in_their_own_registry() -> None:
    first, second = ServingMetrics(), ServingMetrics()  # two apps never clash
    first.answered("churn", "1", "200", 0.003)
    first.batch_size.labels("churn", "1").observe(8)
    first.queue_depth.labels("churn", "1").set(5)
    text = first.render().decode()
    assert 'modelpilot_requests_total{code="200",model="churn",version="1"} 1.0' in text
    assert (
        'modelpilot_request_duration_seconds_bucket{le="0.005",model="churn",version="1"} 1.0'
        in text
    )
    assert 'modelpilot_batch_size_rows_sum{model="churn",version="1"} 8.0' in text
    assert 'modelpilot_queue_depth_rows{model="churn",version="1"} 5.0' in text
    assert "# TYPE modelpilot_request_errors_total counter" in text
    assert "churn" not in second.render().decode()


@given(st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=3000))
def test_folded_latency_histogram_matches_prometheus_clients_own(durations: list[float]) -> None:
    ours, reference = ServingMetrics(), CollectorRegistry()
    histogram = Histogram(
        "ref", "", ("model", "version"), buckets=LATENCY_BUCKETS, registry=reference
    )
    for seconds in durations:
        ours.answered("churn", "1", "200", seconds)
        histogram.labels("churn", "1").observe(seconds)
    text = ours.render().decode()
    expected = (
        generate_latest(reference).decode().replace("ref_", "modelpilot_request_duration_seconds_")
    )
    for line in expected.splitlines():
        if line.startswith("modelpilot_request_duration_seconds_") and "_created" not in line:
            name, value = line.rsplit(" ", 1)
            assert math.isclose(_value(text, name), float(value), rel_tol=1e-9), line
    assert _value(text, 'modelpilot_requests_total{code="200",model="churn",version="1"}') == len(
        durations
    )


def _value(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])

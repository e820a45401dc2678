"""Prometheus metrics: conventional names, a registry per app, labels per model and version."""

from __future__ import annotations

from modelpilot.serving.metrics import ServingMetrics


def test_families_follow_prometheus_naming_and_stay_in_their_own_registry() -> None:
    first, second = ServingMetrics(), ServingMetrics()  # two apps never clash
    first.requests.labels("churn", "1", "200").inc()
    first.latency.labels("churn", "1").observe(0.003)
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

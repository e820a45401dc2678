"""Prometheus metrics: conventional names, a registry per app, labels per model and version."""

from __future__ import annotations

import math
import threading

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from modelpilot.serving.metrics import BATCH_BUCKETS, FOLD_EVERY, LATENCY_BUCKETS, ServingMetrics


def test_families_follow_prometheus_naming_and_stay_in_their_own_registry() -> None:
    first, second = ServingMetrics(), ServingMetrics()  # two apps never clash
    first.answered("churn", "1", "200", 0.003)
    first.predicted("churn", "1", 8, 0.004)
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


@given(
    st.lists(
        st.tuples(st.integers(1, 300), st.floats(0, 5, allow_nan=False)),
        min_size=1,
        max_size=2500,
    )
)
def test_folded_batch_histograms_match_prometheus_clients_own(
    calls: list[tuple[int, float]],
) -> None:
    ours, reference = ServingMetrics(), CollectorRegistry()
    sizes = Histogram(
        "ref_rows", "", ("model", "version"), buckets=BATCH_BUCKETS, registry=reference
    )
    seconds = Histogram(
        "ref_seconds", "", ("model", "version"), buckets=LATENCY_BUCKETS, registry=reference
    )
    for rows, took in calls:
        ours.predicted("churn", "1", rows, took)
        sizes.labels("churn", "1").observe(rows)
        seconds.labels("churn", "1").observe(took)
    text = ours.render().decode()
    expected = (
        generate_latest(reference)
        .decode()
        .replace("ref_rows_", "modelpilot_batch_size_rows_")
        .replace("ref_seconds_", "modelpilot_predict_duration_seconds_")
    )
    for line in expected.splitlines():
        if line.startswith("modelpilot_") and "_created" not in line:
            name, value = line.rsplit(" ", 1)
            assert math.isclose(_value(text, name), float(value), rel_tol=1e-9), line


def test_batches_recorded_from_several_threads_are_all_counted() -> None:
    """A slow model's batches are recorded from the predict thread while the loop scrapes."""
    metrics, per_thread = ServingMetrics(), 3 * FOLD_EVERY + 7
    scraped: list[bytes] = []

    def record() -> None:
        for _ in range(per_thread):
            metrics.predicted("churn", "1", 2, 0.001)

    threads = [threading.Thread(target=record) for _ in range(3)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        scraped.append(metrics.render())  # folds what has arrived so far, concurrently
    for thread in threads:
        thread.join()
    text = metrics.render().decode()
    series = '{model="churn",version="1"}'
    assert _value(text, "modelpilot_batch_size_rows_count" + series) == 3 * per_thread
    assert _value(text, "modelpilot_batch_size_rows_sum" + series) == 2 * 3 * per_thread


def test_the_hot_paths_list_of_200s_is_counted_and_folded() -> None:
    metrics = ServingMetrics()
    durations = metrics.ok_durations(("churn", "1"))
    durations.extend([0.002] * (FOLD_EVERY + 5))  # what the data plane appends, a request each
    metrics.fold_ok(("churn", "1"))
    assert durations == []  # folded, the same list kept for the next appends
    durations.append(0.2)
    text = metrics.render().decode()
    series = 'modelpilot_requests_total{code="200",model="churn",version="1"}'
    assert _value(text, series) == FOLD_EVERY + 6
    bucket = 'modelpilot_request_duration_seconds_bucket{le="0.0025",model="churn",version="1"}'
    assert _value(text, bucket) == FOLD_EVERY + 5


def _value(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])

"""The replica supervisor's rules: bounded restarts, no restart for start-up errors, and
replicas added and drained as the autoscaler asks.

Replicas here are tiny real processes (``python -c``) that exit at once or wait for SIGTERM; the
full
``modelpilot serve --replicas`` runs in tests/integration/serving/test_serving_replicas.py.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.serving.autoscale import Autoscaler, ScalingRule
from modelpilot.serving.replicas import LocalProcesses, ReplicasFailed, RestartBudget, Supervisor


@given(
    max_restarts=st.integers(0, 5),
    window_s=st.floats(0.5, 100.0),
    gaps=st.lists(st.floats(0.0, 50.0), max_size=40),
)
def test_restart_budget_never_allows_more_than_its_maximum_within_a_window(
    max_restarts: int, window_s: float, gaps: list[float]
) -> None:
    budget = RestartBudget(max_restarts=max_restarts, window_s=window_s)
    now, allowed = 0.0, []
    for gap in gaps:
        now += gap
        if budget.allow(now):
            allowed.append(now)
    for i, start in enumerate(allowed):
        inside = [t for t in allowed[i:] if t - start < window_s]
        assert len(inside) <= max_restarts


def test_restart_budget_backs_off_up_to_four_seconds() -> None:
    budget = RestartBudget(max_restarts=10, window_s=60.0)
    waits = []
    for t in range(8):
        assert budget.allow(float(t))
        waits.append(budget.backoff_s())
    assert waits == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def _counting(tmp_path: Path, exit_code: int) -> list[str]:
    """A replica that notes its start in a file, then exits with ``exit_code``."""
    starts = tmp_path / "starts"
    return [
        sys.executable,
        "-c",
        f"open({str(starts)!r}, 'a').write('x'); raise SystemExit({exit_code})",
    ]


def test_a_replica_that_keeps_dying_stops_the_supervisor_after_its_restarts(
    tmp_path: Path,
) -> None:
    supervisor = Supervisor(LocalProcesses(lambda index: _counting(tmp_path, 1)), 1, max_restarts=2)
    with pytest.raises(
        ReplicasFailed, match=r"replica 0 died 3 times within 60 s \(last: exit code 1\)"
    ) as failed:
        supervisor.run()
    assert failed.value.exit_code == 6
    assert (tmp_path / "starts").read_text() == "xxx"  # the first start and two restarts


def test_a_start_up_error_is_not_restarted_and_keeps_its_exit_code(tmp_path: Path) -> None:
    supervisor = Supervisor(LocalProcesses(lambda index: _counting(tmp_path, 3)), 2)
    with pytest.raises(ReplicasFailed, match=r"failed to start \(exit code 3\)") as failed:
        supervisor.run()
    assert failed.value.exit_code == 3
    assert len((tmp_path / "starts").read_text()) <= 2  # each replica started at most once


_WAITS_FOR_SIGTERM = """
import pathlib, signal, sys
log, index = pathlib.Path(sys.argv[1]), sys.argv[2]
def drained(*_):
    with log.open("a") as f:
        f.write(f"drained {index}\\n")
    raise SystemExit(0)
signal.signal(signal.SIGTERM, drained)
with log.open("a") as f:
    f.write(f"ready {index}\\n")
while True:
    signal.pause()
"""


def test_the_supervisor_adds_replicas_under_load_and_drains_them_when_idle(
    tmp_path: Path,
) -> None:
    """Queue readings come from the test (100 rows until three replicas serve, then 0);
    delays of 0 s make each poll (0.1 s) a decision. Replicas are real processes."""
    events = tmp_path / "events"
    events.touch()
    rule = ScalingRule(1, 3, target_queue_rows=32, scale_up_delay_s=0, scale_down_delay_s=0)
    supervisor: Supervisor
    readings = []

    def queue_depth(index: int, node_ip: str | None) -> float | None:
        assert node_ip is None  # a local process: on this machine
        lines = events.read_text().splitlines()
        readings.append(index)
        assert len(readings) < 2_000, f"no progress: {lines}"
        if f"ready {index}" not in lines:
            return None  # still starting, as an unanswered /metrics
        if not {"ready 0", "ready 1", "ready 2"} <= set(lines):
            return 100.0  # loaded until three replicas serve
        if all(s.index == 0 for s in supervisor.slots):
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # done: stop
        return 0.0

    supervisor = Supervisor(
        LocalProcesses(
            lambda index: [sys.executable, "-c", _WAITS_FOR_SIGTERM, str(events), str(index)]
        ),
        1,
        autoscaler=Autoscaler(rule, replicas=1),
        queue_depth=queue_depth,
    )
    supervisor.run()
    lines = events.read_text().splitlines()
    assert sorted(line for line in lines if line.startswith("ready")) == [
        "ready 0",
        "ready 1",
        "ready 2",
    ]  # each index started once: none was restarted
    assert [line for line in lines if line.startswith("drained")] == [
        "drained 2",  # the highest index goes first, each one drained by SIGTERM
        "drained 1",
        "drained 0",  # the supervisor's own SIGTERM
    ]

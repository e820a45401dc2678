"""The replica supervisor's rules: bounded restarts, and no restart for start-up errors.

Replicas here are tiny real processes (``python -c``) that exit at once; the full
``modelpilot serve --replicas`` runs in tests/integration/serving/test_serving_replicas.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.serving.replicas import ReplicasFailed, RestartBudget, Supervisor


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
    supervisor = Supervisor(lambda index: _counting(tmp_path, 1), 1, max_restarts=2)
    with pytest.raises(
        ReplicasFailed, match=r"replica 0 died 3 times within 60 s \(last: exit code 1\)"
    ) as failed:
        supervisor.run()
    assert failed.value.exit_code == 6
    assert (tmp_path / "starts").read_text() == "xxx"  # the first start and two restarts


def test_a_start_up_error_is_not_restarted_and_keeps_its_exit_code(tmp_path: Path) -> None:
    supervisor = Supervisor(lambda index: _counting(tmp_path, 3), 2)
    with pytest.raises(ReplicasFailed, match=r"failed to start \(exit code 3\)") as failed:
        supervisor.run()
    assert failed.value.exit_code == 3
    assert len((tmp_path / "starts").read_text()) <= 2  # each replica started at most once

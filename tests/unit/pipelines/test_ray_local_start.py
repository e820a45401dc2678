"""A local Ray cluster whose node is slow to start is started again, not reported as a crash.

Ray waits a fixed 30 s for its raylet, then raises a bare ``Exception``; on a loaded
two-core machine that ended all 15 Ray tests of one test worker. Ray cannot be made to time
out on purpose here, so a stand-in with Ray's ``init``/``shutdown``/``is_initialized`` plays
the slow node: what is tested is our retry and our error, not Ray.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from modelpilot.errors import Unavailable
from modelpilot.ray_cluster import LOCAL_START_ATTEMPTS, connect, start_local

SLOW = "The current node timed out during startup. This could happen because ..."


def _ray(failures: list[Exception]) -> Any:
    calls: list[str] = []

    def init(**_: Any) -> None:
        calls.append("init")
        if failures:
            raise failures.pop(0)

    return SimpleNamespace(
        init=init,
        shutdown=lambda: calls.append("shutdown"),
        is_initialized=lambda: False,
        calls=calls,
    )


def test_a_node_slow_to_start_is_started_again_after_a_shutdown() -> None:
    ray = _ray([Exception(SLOW)])
    start_local(ray, num_cpus=2)  # type: ignore[arg-type]
    assert ray.calls == ["init", "shutdown", "init"]


def test_another_error_is_not_retried() -> None:
    ray = _ray([ValueError("num_cpus must be positive")])
    with pytest.raises(ValueError, match="num_cpus"):
        start_local(ray, num_cpus=2)  # type: ignore[arg-type]
    assert ray.calls == ["init"]


def test_a_node_that_never_starts_is_unavailable_naming_ray_s_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = _ray([Exception(SLOW) for _ in range(LOCAL_START_ATTEMPTS)])
    monkeypatch.setattr("modelpilot.ray_cluster.import_ray", lambda option: ray)
    with pytest.raises(Unavailable, match=r"Cannot start or reach the Ray cluster \(a local "
                       r"one\): Exception: The current node timed out during startup"):  # fmt: skip
        connect(None)
    assert ray.calls.count("init") == LOCAL_START_ATTEMPTS

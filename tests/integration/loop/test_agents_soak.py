"""Two ``modelpilot agent`` processes on one PostgreSQL database for about 20 s of triggers
(benchmarks/agents_soak.py, shortened): every occurrence decided exactly once, every fired
run started once and SUCCEEDED, limits held, and both agents did part of the work."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # make test-slow runs it

SCRIPT = Path(__file__).parents[3] / "benchmarks" / "agents_soak.py"


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agents_soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_two_agents_decide_every_occurrence_once_under_a_steady_load(
    pg_schema_uri: str, tmp_path: Path
) -> None:
    soak = _soak_module()
    load = soak.Load(
        seconds=12, schedule_triggers=4, version_every_s=12, alert_every_s=4,
        manual_every_s=2, small_budget=1, drain_timeout_s=120,
    )  # fmt: skip
    report = soak.soak(pg_schema_uri, load, tmp_path)
    print(report.summary())
    assert report.violations == [], report.summary()
    assert report.duplicates == 0 and report.missing == 0
    assert {"schedule", "dataset", "alert", "manual"} <= set(report.by_kind), report.summary()
    agents = [actor for actor in report.by_agent if actor.startswith("agent:")]
    assert len(agents) == 2, report.summary()
    assert report.pipeline_runs == report.fired > 0

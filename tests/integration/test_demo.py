"""``make demo`` end to end: ``python -m modelpilot.demo`` in a subprocess on a fresh home,
then its output and its store. The last part is the continuous-training loop running by
itself: drift -> alert -> retraining -> gate -> canary -> promoted, and a retraining on
mislabelled data stopped at the gate (by the baseline check against the champion) while the
champion keeps serving."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.config import Settings
from modelpilot.loop.decisions import LoopState, list_decisions
from modelpilot.release import service as deployments
from modelpilot.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The demo's output (stdout and stderr) and its home, run once for the module."""
    home = tmp_path_factory.mktemp("demo") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    done = subprocess.run(
        [sys.executable, "-m", "modelpilot.demo"],
        env={**env, "MODELPILOT_HOME": str(home), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return output, home


def _one(pattern: str, output: str) -> re.Match[str]:
    found = re.findall(pattern, output, flags=re.MULTILINE)
    assert len(found) == 1, f"{pattern!r} found {len(found)} times in:\n{output[-6000:]}"
    match = re.search(pattern, output, flags=re.MULTILINE)
    assert match is not None
    return match


def test_the_demo_walks_the_first_stages_and_finishes(demo: tuple[str, Path]) -> None:
    output, _ = demo
    for text in ("1. Generated 20,000 customers", "rollout controller:", "8. Monitoring:"):
        assert text in output
    assert output.rstrip().splitlines()[-1].strip("─ ") == "demo finished"


def test_drift_fires_the_monitor_and_a_better_retraining_is_promoted(
    demo: tuple[str, Path],
) -> None:
    output, _ = demo
    fired = re.search(r"monitored churn-loop-\d+ \(10s, .* -> alert data-drift firing", output)
    assert fired is not None, output[-6000:]
    first, second = re.finditer(
        r"decision (\w{8}) (churn-loop-\d+): training: trigger \2\.1 fired", output
    )
    short, name = first.group(1), first.group(2)
    states = re.findall(rf"decision {short} {name}: (\w+):", output)
    assert states == ["training", "evaluating", "ready", "canary", "promoted"]
    assert fired.start() < first.start() and second.group(2) == name
    assert re.search(rf"rollout {name}: advance: step 1 \(50%\) passed", output)
    assert re.search(r"gate passed baseline\.roc_auc: roc_auc: model [\d.]+ vs baseline", output)
    _one(rf"decision {short} {name}: promoted: churn/\d+ promoted: all 2 steps passed", output)


def test_a_worse_retraining_is_stopped_at_the_gate_and_the_champion_keeps_serving(
    demo: tuple[str, Path],
) -> None:
    output, home = demo
    promoted = _one(r"decision \w{8} (churn-loop-\d+): promoted: (churn/\d+) promoted", output)
    name, champion = promoted.group(1), promoted.group(2)
    stopped = _one(
        rf"decision \w{{8}} {name}: stopped_at_gate: (churn/\d+) failed the gate against "
        rf"{champion}: baseline\.roc_auc: ",
        output,
    )
    assert stopped.group(1) != champion
    assert f"{champion} keeps serving: it answered 200 of the last 200 requests" in output
    assert output.index("11. The loop's record: modelpilot loop history") > stopped.start()

    store = Store.open(Settings(home=home).resolved_store_uri())
    try:
        worse, better = list_decisions(store, deployment=name)
        assert (better.state, worse.state) == (LoopState.PROMOTED, LoopState.STOPPED_AT_GATE)
        assert better.candidate == champion == worse.champion
        gate = next(s.evidence["gate"] for s in worse.steps if "gate" in s.evidence)
        verdicts = {c["name"]: c["passed"] for c in gate["checks"]}
        assert verdicts == {"metrics.roc_auc.min": True, "baseline.roc_auc": False}
        config = deployments.get_deployment(store, name).config
        assert config.stable.ref == champion and config.candidate() is None
    finally:
        store.close()

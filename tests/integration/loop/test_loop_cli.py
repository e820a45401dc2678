"""The loop from the installed executable: a person fires a policy's trigger, ``modelpilot
agent --once`` trains in a subprocess step, gates the candidate and stops at the approval;
``modelpilot loop history|show`` print the decision; ``modelpilot approve`` lets it through
(and refuses a second time, exit 4, and an unknown id, exit 3); the next agent iteration
starts the canary."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from loop_files import POLICY, installed_exe, seed_home, set_policy

import modelpilot as mp
from modelpilot.config import Settings
from modelpilot.workspace import Workspace

pytestmark = pytest.mark.usefixtures("store_env")


@pytest.fixture(scope="module")
def exe() -> str:
    return installed_exe()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a champion, data, a policy that requires approval, and its files."""
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    ws: Workspace = mp.init()
    seed_home(ws, tmp_path)
    set_policy(ws, tmp_path, POLICY.format(flip="false", fail="false", approval="true"), now_ms=1)
    ws.close()
    assert Settings().home == tmp_path / "home"
    return tmp_path


def _run(exe: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, cwd=folder, timeout=300, check=False
    )


def test_fire_agent_history_approve_and_canary(exe: str, project: Path) -> None:
    fired = _run(exe, project, "pipelines", "trigger", "fire", "churn-prod.1")
    assert fired.returncode == 0, fired.stdout + fired.stderr
    agent = _run(exe, project, "agent", "--once")
    assert agent.returncode == 0, agent.stdout + agent.stderr
    found = re.search(
        r"decision ([0-9a-f]{8}) churn-prod: awaiting_approval: churn/2 passed "
        r"the gate against churn/1",
        agent.stdout,
    )
    assert found, agent.stdout
    short = found.group(1)

    history = _run(exe, project, "loop", "history", "churn-prod")
    assert history.returncode == 0, history.stderr
    assert f"decision {short} churn-prod churn/2 awaiting_approval" in history.stdout
    for state in ("training", "evaluating", "awaiting_approval"):
        assert state in history.stdout
    shown = _run(exe, project, "loop", "show", short, "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["candidate"], record["champion"], record["state"]) == (
        "churn/2",
        "churn/1",
        "awaiting_approval",
    )
    assert record["steps"][2]["evidence"]["gate"]["passed"] is True

    approved = _run(exe, project, "approve", short, "--reason", "looks good")
    assert approved.returncode == 0, approved.stderr
    assert "ready: approved by" in approved.stdout and "looks good" in approved.stdout
    again = _run(exe, project, "approve", short)
    assert again.returncode == 4, again.stdout + again.stderr
    assert "is ready, not awaiting_approval" in again.stderr
    unknown = _run(exe, project, "approve", "ffffffff")
    assert unknown.returncode == 3, unknown.stdout + unknown.stderr
    assert "No loop decision with id 'ffffffff'" in unknown.stderr
    missing = _run(exe, project, "loop", "history", "nope")
    assert missing.returncode == 3 and "nope" in missing.stderr

    agent = _run(exe, project, "agent", "--once")
    assert agent.returncode == 0, agent.stdout + agent.stderr
    assert f"decision {short} churn-prod: canary: canary churn/2 at 50%" in agent.stdout
    status = _run(exe, project, "deploy", "status", "churn-prod", "--json")
    variants = {v["role"]: v for v in json.loads(status.stdout)["config"]["variants"]}
    assert variants["canary"]["version"] == 2 and variants["canary"]["weight"] == 50

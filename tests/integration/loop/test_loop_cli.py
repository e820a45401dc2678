"""The loop from the installed executable (and inside ``modelpilot server --agent``): a
person fires a policy's trigger, ``modelpilot agent --once`` trains in a subprocess step,
gates the candidate and stops at the approval; ``modelpilot loop history|show`` print the
decision; ``modelpilot approve`` lets it through (and refuses a second time, exit 4, and an
unknown id, exit 3); the next agent iteration starts the canary. SQLite only: the same moves
run on PostgreSQL in test_loop_decisions.py, in process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from loop_files import (
    POLICY,
    churn_frame,
    inline_launcher,
    installed_exe,
    seed_home,
    set_policy,
)

import modelpilot as mp
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.identity import Role
from modelpilot.loop import load_loop_policy, set_loop_policy
from modelpilot.loop.decisions import LoopDecision, LoopState, list_decisions
from modelpilot.loop.runner import LoopRunner
from modelpilot.pipelines import fire_trigger
from modelpilot.workspace import Workspace
from mp_server import make_token, start_server

# An end-to-end scenario: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exe() -> str:
    return installed_exe()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a champion, data, a policy that requires approval, and its files."""
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELPILOT_STORE_URI", raising=False)
    ws: Workspace = mp.init()
    seed_home(ws, tmp_path)
    set_policy(ws, tmp_path, POLICY.format(flip="false", fail="false", approval="true"), now_ms=1)
    ws.close()
    assert Settings().home == tmp_path / "home"
    return tmp_path


def _run(
    exe: str, folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
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


def test_the_loop_runs_inside_modelpilot_server_with_agent(project: Path) -> None:
    """A new version of the training data fires the policy's trigger; the agent inside the
    server trains, gates and stops at the approval, with nobody running `modelpilot agent`."""
    text = POLICY.format(flip="false", fail="false", approval="true")
    (project / "loop.yaml").write_text(text.replace("- manual: true", "- on_dataset: churn-train"))
    settings = Settings()
    ws = Workspace(settings)
    try:
        set_loop_policy(
            ws.store,
            "churn-prod",
            load_loop_policy(project / "loop.yaml"),
            actor="alice",
            now_ms=now_ms(),
        )
        server = start_server(
            settings.home,
            settings.resolved_store_uri(),
            args=("--agent", "--agent-interval-s", "0.3"),
        )
        try:
            ws.log_dataset(churn_frame(3), name="churn-train")  # the new window
            deadline = time.monotonic() + 180
            decisions: list[LoopDecision] = []
            while time.monotonic() < deadline:
                decisions = list_decisions(ws.store, deployment="churn-prod")
                if (decisions and decisions[0].state.is_final) or (
                    decisions and decisions[0].state is LoopState.AWAITING_APPROVAL
                ):
                    break
                time.sleep(0.2)  # polling another process's progress, bounded by the deadline
            assert decisions, server.stderr_text()
            [decision] = decisions
            assert decision.state is LoopState.AWAITING_APPROVAL, decision.reason
            assert decision.candidate == "churn/2"
            assert all(s.actor.startswith("agent:") for s in decision.steps)
        finally:
            assert server.stop() in (0, -signal.SIGTERM), server.stderr  # uvicorn re-raises it
    finally:
        ws.close()


def test_history_and_approval_over_modelpilot_server(exe: str, project: Path) -> None:
    """A decision waits on the team's server; a viewer reads it and is refused the approval
    (exit 5); a deployer approves, recorded as the token."""
    settings = Settings()
    ws = mp.init()  # the SDK's workspace: the inline training step logs through it
    try:
        runner = LoopRunner(ws, owner="t", actor="agent:t", lease_ms=60_000)
        fire_trigger(ws.store, "churn-prod.1", now_ms(), actor="bob", launch=inline_launcher(ws))
        runner.step(now_ms())
        [waiting] = list_decisions(ws.store, deployment="churn-prod")
        assert waiting.state is LoopState.AWAITING_APPROVAL, waiting.reason
    finally:
        ws.close()
    uri = settings.resolved_store_uri()
    server = start_server(settings.home, uri)
    try:
        roles = (Role.VIEWER, Role.DEPLOYER)
        tokens = {role: make_token(uri, f"{role.name.lower()}-1", role) for role in roles}
        env = {"MODELPILOT_SERVER_URI": server.url, "MODELPILOT_TOKEN": tokens[Role.VIEWER]}
        history = _run(exe, project, "loop", "history", "churn-prod", "--json", env=env)
        assert history.returncode == 0, history.stderr
        assert json.loads(history.stdout)[0]["id"] == waiting.id
        refused = _run(exe, project, "approve", waiting.short_id, env=env)
        assert refused.returncode == 5, refused.stdout + refused.stderr
        assert "needs deployer or higher" in refused.stderr
        env["MODELPILOT_TOKEN"] = tokens[Role.DEPLOYER]
        approved = _run(exe, project, "approve", waiting.short_id, "--reason", "ok", env=env)
        assert approved.returncode == 0, approved.stderr
        assert "ready: approved by token:deployer-1: ok" in approved.stdout
        shown = _run(exe, project, "loop", "show", waiting.short_id, "--json", env=env)
        assert json.loads(shown.stdout)["steps"][-1]["actor"] == "token:deployer-1"
        unknown = _run(exe, project, "loop", "show", "ffffffff", env=env)
        assert unknown.returncode == 3 and "No loop decision" in unknown.stderr
    finally:
        server.stop()

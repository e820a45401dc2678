"""The continuous-training loop end to end on a controllable clock, SQLite and PostgreSQL:
a firing of a policy's trigger becomes one decision that trains, gates the candidate against
the champion, waits for approval where required, walks the canary with the rollout
controller and ends promoted or rolled back; a worse candidate is stopped at the gate; a
failing pipeline fails the decision; a cached retraining changes nothing; two agents make one
decision per firing and move it once per state. The canary's evidence comes from a scripted
stats source (the controller's own input), so each outcome is decided by the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from loop_files import (
    POLICY,
    T0,
    ScriptedStats,
    churn_frame,
    inline_launcher,
    seed_home,
    set_policy,
)

import modelpilot as mp
from modelpilot import release
from modelpilot.config import Settings
from modelpilot.errors import Conflict, NotFound
from modelpilot.loop.agent import Agent
from modelpilot.loop.decisions import LoopState, approve_decision, get_decision, list_decisions
from modelpilot.loop.runner import LoopRunner
from modelpilot.pipelines import fire_trigger
from modelpilot.predictions import LogBatch, PredictionLog, log_folder
from modelpilot.predictions.labels import log_labels
from modelpilot.release.rollout import VariantStats
from modelpilot.store.events import list_events
from modelpilot.workspace import Workspace


@pytest.fixture
def home(settings: Settings, tmp_path: Path) -> Iterator[Workspace]:
    """The SDK's workspace (inline steps log through it) with a champion that sees only a
    weak signal, training and test data, and the gate file."""
    ws = mp.init(settings.home, store_uri=settings.store_uri)
    seed_home(ws, tmp_path)
    yield ws
    ws.close()


def _policy(
    ws: Workspace, folder: Path, *, flip: bool = False, fail: bool = False, approval: bool = False
) -> None:
    text = POLICY.format(
        flip=str(flip).lower(), fail=str(fail).lower(), approval=str(approval).lower()
    )
    set_policy(ws, folder, text)


def _agent(ws: Workspace, stats: ScriptedStats, clock: list[int], name: str = "a1") -> Agent:
    loop = LoopRunner(ws, owner=name, actor=f"agent:{name}", lease_ms=120_000, stats=stats)
    return Agent(
        ws.store, clock=lambda: clock[0], launch=inline_launcher(ws), agent_id=name, loop=loop
    )


def _fire(ws: Workspace, clock: list[int]) -> None:
    fire_trigger(ws.store, "churn-prod.1", clock[0], actor="bob", launch=inline_launcher(ws))


def _healthy(stats: ScriptedStats, requests: int = 60) -> None:
    stats.by_variant = {"stable": VariantStats(requests, 0), "canary": VariantStats(requests, 0)}


def test_a_better_candidate_walks_gate_canary_and_is_promoted(
    home: Workspace, tmp_path: Path
) -> None:
    _policy(home, tmp_path)
    stats, clock = ScriptedStats(), [T0 + 1000]
    agent = _agent(home, stats, clock)
    _fire(home, clock)
    lines = agent.iterate().lines()
    [decision] = list_decisions(home.store, deployment="churn-prod")
    assert decision.state is LoopState.CANARY, decision.reason
    assert [s.state for s in decision.steps] == [
        LoopState.TRAINING,
        LoopState.EVALUATING,
        LoopState.READY,
        LoopState.CANARY,
    ]
    assert (decision.candidate, decision.champion) == ("churn/2", "churn/1")
    assert any(
        f"decision {decision.short_id} churn-prod: canary: canary churn/2 at 50%" in line
        for line in lines
    ), lines
    gate = decision.steps[2].evidence["gate"]
    assert gate["passed"] is True and {c["name"] for c in gate["checks"]} >= {"metrics.roc_auc.min"}
    config = release.get_deployment(home.store, "churn-prod").config
    assert (config.candidate().ref, config.candidate().weight) == ("churn/2", 50)  # type: ignore[union-attr]

    clock[0] += 1000  # too little evidence: the canary holds, the decision too
    stats.by_variant = {"stable": VariantStats(5, 0), "canary": VariantStats(5, 0)}
    agent.iterate()
    assert get_decision(home.store, decision.id).state is LoopState.CANARY
    _healthy(stats)
    clock[0] += 1000
    assert any("rollout churn-prod: advance" in line for line in agent.iterate().lines())
    clock[0] += 1000
    lines = agent.iterate().lines()
    done = get_decision(home.store, decision.id)
    assert done.state is LoopState.PROMOTED, done.reason
    assert release.get_deployment(home.store, "churn-prod").config.stable.ref == "churn/2"
    assert (
        f"decision {decision.short_id} churn-prod: promoted: churn/2 promoted: all 2 steps "
        "passed their guards" in lines
    )
    with home.store.read() as conn:
        kinds = [e.kind for e in reversed(list_events(conn, "deployment:churn-prod", 1000))]
    assert [k for k in kinds if k.startswith("loop.")] == [
        "loop.training",
        "loop.evaluating",
        "loop.ready",
        "loop.canary",
        "loop.promoted",
    ]
    assert done.owner is None and done.lease_until_ms is None
    card = home.cards.model_card("churn/2").to_markdown()
    assert "Continuous training" in home.cards.model_card("churn/2").to_html()
    assert "## Continuous training" in card
    assert f"decision {decision.short_id} on churn-prod (trigger churn-prod.1): promoted" in card


def test_a_worse_candidate_is_stopped_at_the_gate_and_the_champion_keeps_serving(
    home: Workspace, tmp_path: Path
) -> None:
    _policy(home, tmp_path, flip=True)
    clock = [T0 + 1000]
    _fire(home, clock)
    _agent(home, ScriptedStats(), clock).iterate()
    [decision] = list_decisions(home.store, deployment="churn-prod")
    assert decision.state is LoopState.STOPPED_AT_GATE
    assert decision.reason.startswith("churn/2 failed the gate against churn/1: ")
    assert "roc_auc" in decision.reason
    config = release.get_deployment(home.store, "churn-prod").config
    assert config.stable.ref == "churn/1" and config.candidate() is None


def test_approval_blocks_the_canary_until_given(home: Workspace, tmp_path: Path) -> None:
    _policy(home, tmp_path, approval=True)
    stats, clock = ScriptedStats(), [T0 + 1000]
    agent = _agent(home, stats, clock)
    _fire(home, clock)
    for _ in range(3):  # however often the agent looks, it waits
        agent.iterate()
        clock[0] += 60_000
    [decision] = list_decisions(home.store, deployment="churn-prod")
    assert decision.state is LoopState.AWAITING_APPROVAL
    assert decision.reason.endswith(f"waiting for: modelpilot approve {decision.short_id}")
    assert release.get_deployment(home.store, "churn-prod").config.candidate() is None
    approved = approve_decision(home.store, decision.short_id, actor="carol", now_ms=clock[0])
    assert approved.state is LoopState.READY and approved.reason == "approved by carol"
    with pytest.raises(Conflict, match="is ready, not awaiting_approval"):
        approve_decision(home.store, decision.id, actor="carol", now_ms=clock[0])
    agent.iterate()
    assert get_decision(home.store, decision.id).state is LoopState.CANARY


def test_a_rejected_candidate_never_serves(home: Workspace, tmp_path: Path) -> None:
    _policy(home, tmp_path, approval=True)
    clock = [T0 + 1000]
    agent = _agent(home, ScriptedStats(), clock)
    _fire(home, clock)
    agent.iterate()
    [decision] = list_decisions(home.store, deployment="churn-prod")
    rejected = approve_decision(
        home.store,
        decision.id,
        actor="carol",
        now_ms=clock[0],
        reject=True,
        reason="holiday freeze",
    )
    assert (rejected.state, rejected.reason) == (
        LoopState.REJECTED,
        "rejected by carol: holiday freeze",
    )
    agent.iterate()
    assert release.get_deployment(home.store, "churn-prod").config.candidate() is None
    with pytest.raises(NotFound, match="No loop decision with id 'ffff'"):
        approve_decision(home.store, "ffff", actor="carol", now_ms=clock[0])


def test_a_canary_that_breaks_its_guards_is_rolled_back(home: Workspace, tmp_path: Path) -> None:
    _policy(home, tmp_path)
    stats, clock = ScriptedStats(), [T0 + 1000]
    agent = _agent(home, stats, clock)
    _fire(home, clock)
    agent.iterate()
    stats.by_variant = {"stable": VariantStats(100, 0), "canary": VariantStats(100, 40)}
    clock[0] += 1000
    agent.iterate()
    [decision] = list_decisions(home.store, deployment="churn-prod")
    assert decision.state is LoopState.ROLLED_BACK
    assert decision.reason.startswith("churn/2 rolled back: guard failed: error rate 40.0%")
    assert release.get_deployment(home.store, "churn-prod").config.stable.ref == "churn/1"


def test_a_failing_pipeline_fails_the_decision_with_the_step_error(
    home: Workspace, tmp_path: Path
) -> None:
    _policy(home, tmp_path, fail=True)
    clock = [T0 + 1000]
    _fire(home, clock)
    _agent(home, ScriptedStats(), clock).iterate()
    [decision] = list_decisions(home.store, deployment="churn-prod")
    assert decision.state is LoopState.FAILED
    assert "failed" in decision.reason
    assert "the training data has no rows for this window" in decision.reason
    assert release.get_deployment(home.store, "churn-prod").config.candidate() is None


def test_an_unchanged_retraining_changes_nothing(home: Workspace, tmp_path: Path) -> None:
    _policy(home, tmp_path)
    stats, clock = ScriptedStats(), [T0 + 1000]
    agent = _agent(home, stats, clock)
    _fire(home, clock)
    agent.iterate()
    _healthy(stats)
    for _ in range(2):
        clock[0] += 1000
        agent.iterate()
    assert release.get_deployment(home.store, "churn-prod").config.stable.ref == "churn/2"
    clock[0] += 1000
    _fire(home, clock)  # same data, same code: the step's output is reused
    agent.iterate()
    newest = list_decisions(home.store, deployment="churn-prod")[0]
    assert newest.state is LoopState.UNCHANGED, newest.reason
    assert "churn/2, the version already serving" in newest.reason
    assert sorted(m.version for m in home.registry.list_versions("churn")) == [1, 2]


def test_two_agents_make_one_decision_and_move_it_once_per_state(
    home: Workspace, tmp_path: Path
) -> None:
    _policy(home, tmp_path)
    other = Workspace(home.settings)
    try:
        stats, clock = ScriptedStats(), [T0 + 1000]
        first, second = _agent(home, stats, clock, "a1"), _agent(other, stats, clock, "a2")
        _fire(home, clock)
        second.iterate()
        first.iterate()
        _healthy(stats)
        for _ in range(3):
            clock[0] += 1000
            first.iterate()
            second.iterate()
        [decision] = list_decisions(home.store, deployment="churn-prod")
        states = [s.state for s in decision.steps]
        assert states == [
            LoopState.TRAINING,
            LoopState.EVALUATING,
            LoopState.READY,
            LoopState.CANARY,
            LoopState.PROMOTED,
        ]
        assert sorted(m.version for m in home.registry.list_versions("churn")) == [1, 2]
    finally:
        other.close()


def _served(ws: Workspace, frame: pd.DataFrame, at_ms: int) -> list[str]:
    """``frame``'s rows as single-row requests churn-prod served at ``at_ms`` (as the data
    plane logs them); their request ids."""
    ids = [f"r{i}" for i in range(len(frame))]
    rows = [
        {"model": "churn", "request_id": rid, "row": 0, "timestamp_ms": at_ms, "version": 1,
         "deployment": "churn-prod", "variant": "stable", "latency_ms": 2.0, "error": None,
         "in.a": float(r.a), "in.b": float(r.b), "out.prediction": int(r.churned)}
        for rid, r in zip(ids, frame.itertuples(), strict=True)
    ]  # fmt: skip
    log = PredictionLog(log_folder(ws.settings.home), durability="sync")
    log.start()
    try:
        for batch in LogBatch.from_rows(rows):
            log.append(batch)
    finally:
        log.close()
    return ids


def test_a_gate_on_labelled_traffic_judges_the_candidate_on_what_was_served(
    home: Workspace, tmp_path: Path
) -> None:
    text = POLICY.format(flip="false", fail="false", approval="false")
    set_policy(home, tmp_path, text.replace("dataset: churn-test", "window: 7d"))
    served = churn_frame(4, n=200)
    ids = _served(home, served, T0 - 60_000)
    clock = [T0 + 1000]
    few = 20  # too few labels yet: the decision fails, saying how many and what to do
    log_labels(home.settings.home, "churn-prod", ids[:few], served["churned"][:few].tolist())
    _fire(home, clock)
    _agent(home, ScriptedStats(), clock).iterate()
    [failed] = list_decisions(home.store, deployment="churn-prod")
    assert failed.state is LoopState.FAILED
    assert "only 20 labelled requests of 'churn-prod' in the last 7d" in failed.reason
    log_labels(home.settings.home, "churn-prod", ids[few:], served["churned"][few:].tolist())
    clock[0] += 60_000
    _fire(home, clock)
    _agent(home, ScriptedStats(), clock).iterate()
    newest = list_decisions(home.store, deployment="churn-prod")[0]
    assert newest.state is LoopState.CANARY, newest.reason
    gated = newest.steps[2].evidence
    assert (gated["window"], gated["labelled_rows"], gated["gate"]["passed"]) == ("7d", 200, True)

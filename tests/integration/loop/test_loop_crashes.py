"""Crash tests of the continuous-training loop (issue 13): a real ``modelpilot agent`` is
SIGKILLed during training, after its training step registered a version, and during the
canary; a second agent then finishes or fails the decision cleanly, with no duplicate version
and no orphan canary. The killed agent's step worker (its own process group) dies with it.
Where SIGKILL cannot hit the moment (between an action and its record), the action is done by
hand and a runner then records it without doing it twice; two agents racing on a decision
whose lease ran out take it over exactly once (SQLite and PostgreSQL).

The subprocess tests use SQLite, ``--interval-s 0.2 --lease-s 3`` (a quick takeover), and
poll the store with deadlines."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from loop_files import (
    POLICY,
    T0,
    ScriptedStats,
    churn_frame,
    inline_launcher,
    installed_exe,
    seed_home,
    set_policy,
)

import modelpilot as mp
from modelpilot import release
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.loop.decisions import (
    LoopDecision,
    LoopState,
    approve_decision,
    claim_decision,
    get_decision,
    list_decisions,
)
from modelpilot.loop.runner import LoopRunner
from modelpilot.pipelines import PipelineState, StepState, fire_trigger, list_pipeline_runs
from modelpilot.pipelines.entities import PipelineRun
from modelpilot.pipelines.triggers import trigger_history
from modelpilot.registry.service import list_versions
from modelpilot.store import Store
from modelpilot.workspace import Workspace

# An end-to-end scenario: `make test-slow` (and .ci/run) runs it, `make test` does not.
pytestmark = pytest.mark.slow

T = TypeVar("T")
AGENT_OPTIONS = ("--interval-s", "0.2", "--lease-s", "3")
CRASH_POLICY = """\
triggers:
  - schedule: "* * * * *"
    cooldown: 1h
training:
  pipeline: {pipeline}
  params: {params}
evaluation: {{dataset: churn-test, target: churned, gate: gate.yaml}}
rollout:
  steps: [50, 100]
  min_requests_per_step: 30
  min_seconds_per_step: 0
  guards: {{max_prediction_psi: null, max_p99_latency_ratio: 100}}
"""
HOUR_MS = 3_600_000


@dataclass
class Processes:
    """What a test started; whatever is still alive at its end is killed."""

    folder: Path
    exe: str
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)  # process groups (step workers)
    logs: list[Path] = field(default_factory=list)

    def agent(self) -> subprocess.Popen[bytes]:
        return self.start("agent", *AGENT_OPTIONS)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"{args[0]}-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [self.exe, *args], cwd=self.folder, stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        self.logs.append(log)
        return process

    def output(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()}" for p in self.logs if p.exists())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Processes]:
    """A SQLite home with a champion churn/1 deployed as churn-prod, data and the gate;
    the test sets the policy. Every process the test started is killed at its end."""
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELPILOT_STORE_URI", raising=False)
    ws: Workspace = mp.init()
    seed_home(ws, tmp_path)
    ws.close()
    (tmp_path / "hold").mkdir()
    processes = Processes(tmp_path, installed_exe())
    yield processes
    for group in processes.groups:
        _kill_group(group)
    for process in processes.started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)


@pytest.fixture
def store(project: Processes) -> Iterator[Store]:
    opened = Store.open(Settings().resolved_store_uri())
    yield opened
    opened.close()


def _crash_policy(folder: Path, *, register: bool) -> None:
    params = f"{{data: churn-train, hold: {folder / 'hold'}, register: {str(register).lower()}}}"
    text = CRASH_POLICY.format(pipeline="crash_pipeline.py:retrain", params=params)
    _set_policy_now(folder, text)


def _set_policy_now(folder: Path, text: str) -> None:
    """The policy, set an hour ago: its every-minute schedule is due at the agent's start."""
    ws = Workspace(Settings())
    try:
        set_policy(ws, folder, text, now_ms=now_ms() - HOUR_MS)
    finally:
        ws.close()


def _wait(what: str, check: Callable[[], T | None], processes: Processes, timeout_s: float) -> T:
    """Poll ``check`` until it returns something (bounded by a deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            pytest.fail(
                f"Timed out after {timeout_s:g} s waiting for {what}.\n{processes.output()}"
            )
        time.sleep(0.05)  # polling the store and the processes; bounded by the deadline


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _running_step(store: Store, hold: Path, marker: str) -> Callable[[], PipelineRun | None]:
    def check() -> PipelineRun | None:
        runs = list_pipeline_runs(store)
        if not runs or not (hold / marker).exists():
            return None
        run = runs[0]
        return run if run.steps[0].state is StepState.RUNNING else None

    return check


def _final_decision(store: Store) -> Callable[[], LoopDecision | None]:
    def check() -> LoopDecision | None:
        found = list_decisions(store, deployment="churn-prod")
        return found[0] if found and found[0].state.is_final else None

    return check


def _kill_agent_mid_step(
    project: Processes, store: Store, marker: str
) -> tuple[PipelineRun, subprocess.Popen[bytes]]:
    """Start an agent, SIGKILL it while its training step holds (after ``marker`` exists),
    and check that its step worker died with it."""
    hold = project.folder / "hold"
    first = project.agent()
    run = _wait(
        "the training step to run", _running_step(store, hold, marker), project, timeout_s=60
    )
    worker = int((hold / "worker.pid").read_text())
    project.groups.append(worker)  # the worker leads its own process group
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    _wait(
        f"the step worker {worker} to die with its agent",
        lambda: not _alive(worker),
        project,
        timeout_s=10,
    )
    return run, first


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def _fired(store: Store) -> list[str]:
    return [f.id for f in trigger_history(store, "churn-prod.1") if f.is_fired]


def _assert_failed_as_abandoned(
    decision: LoopDecision, run: PipelineRun, killed: subprocess.Popen[bytes], store: Store
) -> None:
    assert decision.state is LoopState.FAILED, decision.reason
    assert decision.reason.startswith(f"pipeline run {run.id[:8]} failed: abandoned: owner "), (
        decision.reason
    )
    assert f":{killed.pid}:" in decision.reason  # the killed agent owned the run
    assert "stopped heartbeating at" in decision.reason
    assert decision.candidate is None and decision.owner is None
    reclaimed = list_pipeline_runs(store)[0]
    assert (reclaimed.id, reclaimed.state) == (run.id, PipelineState.FAILED)
    assert reclaimed.steps[0].state is StepState.FAILED
    deployment = release.get_deployment(store, "churn-prod")
    assert deployment.config.candidate() is None and deployment.config.stable.ref == "churn/1"
    assert [r.action for r in release.history(store, "churn-prod")] == ["create"]


def _kill_in_training_and_take_over(
    project: Processes, store: Store, *, register: bool
) -> list[int]:
    """Kill the agent while its step holds (before or after it registered a version), let a
    second agent end the decision, check it failed cleanly; the versions of churn then."""
    _crash_policy(project.folder, register=register)
    run, killed = _kill_agent_mid_step(project, store, "registered" if register else "worker.pid")
    second = project.agent()
    decision = _wait("the decision to end", _final_decision(store), project, timeout_s=60)
    assert _stop(second) == 0, project.output()
    _assert_failed_as_abandoned(decision, run, killed, store)
    assert len(list_decisions(store)) == 1 and len(_fired(store)) == 1
    assert len(list_pipeline_runs(store)) == 1  # the second agent did not train again
    (project.folder / "hold" / "release").touch()  # a surviving worker would go on now
    return sorted(m.version for m in list_versions(store, "churn"))


def test_an_agent_killed_during_training_leaves_a_failed_decision_and_no_version(
    project: Processes, store: Store
) -> None:
    assert _kill_in_training_and_take_over(project, store, register=False) == [1]


def test_an_agent_killed_after_registration_leaves_one_version_and_no_canary(
    project: Processes, store: Store
) -> None:
    # The run never finished (its step never returned the version), so the decision fails
    # although the version exists: a half-done candidate is never gated nor canaried, and
    # nothing retries the training (one new version, the killed run's).
    assert _kill_in_training_and_take_over(project, store, register=True) == [1, 2]


def _serve(project: Processes) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = project.start("serve", "churn-prod", "--port", str(port))
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert server.poll() is None, project.output()
        try:
            return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    _wait("modelpilot serve to be ready", ready, project, timeout_s=60)
    return url


def _state(store: Store, state: LoopState) -> Callable[[], LoopDecision | None]:
    def check() -> LoopDecision | None:
        found = list_decisions(store, deployment="churn-prod")
        return found[0] if found and found[0].state is state else None

    return check


def test_an_agent_killed_during_the_canary_is_replaced_and_the_canary_promoted_once(
    project: Processes, store: Store
) -> None:
    text = CRASH_POLICY.format(
        pipeline="loop_pipeline.py:retrain", params="{data: churn-train, flip: false}"
    )
    _set_policy_now(project.folder, text)
    first = project.agent()
    url = _serve(project)  # starts while the first agent trains
    canary = _wait(
        "the first agent to start the canary", _state(store, LoopState.CANARY), project, 120
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    config = release.get_deployment(store, "churn-prod").config
    assert (config.candidate().ref, config.candidate().weight) == ("churn/2", 50)  # type: ignore[union-attr]
    second = project.agent()
    rows = iter(churn_frame(3, n=500)[["a", "b"]].to_dict(orient="records"))
    with httpx.Client(timeout=10) as client:
        for _ in range(5):  # bounded: each of the 2 steps needs 30 canary requests
            revision = release.get_deployment(store, "churn-prod").revision
            for row in itertools.islice(rows, 100):
                assert client.post(f"{url}/predict/churn-prod", json=[row]).status_code == 200
            client.post(f"{url}/admin/flush")
            deadline = time.monotonic() + 60  # a busy machine: send more evidence, then look
            while time.monotonic() < deadline and not (
                _final_decision(store)()
                or release.get_deployment(store, "churn-prod").revision != revision
            ):
                time.sleep(0.05)  # polling the store; bounded by the deadline
            if _final_decision(store)() is not None:
                break
    decision = _wait("the second agent to end the canary", _final_decision(store), project, 30)
    assert _stop(second) == 0, project.output()
    assert decision.id == canary.id and len(list_decisions(store)) == 1
    assert decision.state is LoopState.PROMOTED, decision.reason
    assert [s.state for s in decision.steps] == [
        LoopState.TRAINING,
        LoopState.EVALUATING,
        LoopState.READY,
        LoopState.CANARY,
        LoopState.PROMOTED,
    ]
    assert decision.steps[-1].actor != decision.steps[3].actor  # the second agent recorded it
    history = release.history(store, "churn-prod")
    assert [r.action for r in reversed(history)] == [
        "create",
        "canary",
        "advance",
        "promote",
    ], [(r.action, r.reason) for r in history]
    assert release.get_deployment(store, "churn-prod").config.stable.ref == "churn/2"


# -- in process: between an action and its record, and racing takeovers -----------------------


@pytest.fixture
def home(settings: Settings, tmp_path: Path) -> Iterator[Workspace]:
    ws = mp.init(settings.home, store_uri=settings.store_uri)
    seed_home(ws, tmp_path)
    set_policy(ws, tmp_path, POLICY.format(flip="false", fail="false", approval="true"))
    yield ws
    ws.close()


def _runner(ws: Workspace, name: str) -> LoopRunner:
    return LoopRunner(ws, owner=name, actor=f"agent:{name}", lease_ms=3000, stats=ScriptedStats())


def _ready_decision(ws: Workspace) -> LoopDecision:
    """A decision whose candidate churn/2 passed the gate and was approved."""
    fire_trigger(ws.store, "churn-prod.1", T0 + 1000, actor="bob", launch=inline_launcher(ws))
    _runner(ws, "a0").step(T0 + 1000)
    [decision] = list_decisions(ws.store, deployment="churn-prod")
    assert decision.state is LoopState.AWAITING_APPROVAL, decision.reason
    return approve_decision(ws.store, decision.id, actor="carol", now_ms=T0 + 2000)


def _canary_revisions(ws: Workspace) -> list[int]:
    return [r.revision for r in ws.deployments.history("churn-prod") if r.action == "canary"]


def test_a_canary_started_but_not_recorded_is_recorded_once_and_not_started_again(
    home: Workspace,
) -> None:
    decision = _ready_decision(home)
    rollout = home.deployments.get_deployment("churn-prod")
    policy = release.RolloutPolicy(steps=(50, 100), min_requests_per_step=40)
    started = home.deployments.set_canary(  # what the killed agent did before recording it
        "churn-prod", "churn/2", 50, policy=policy, expected_revision=rollout.revision
    )
    _runner(home, "a2").step(T0 + 3000)
    moved = get_decision(home.store, decision.id)
    assert moved.state is LoopState.CANARY, moved.reason
    assert moved.reason == "canary churn/2 is serving"
    assert moved.steps[-1].evidence == {"revision": started.revision}
    assert _canary_revisions(home) == [started.revision]

    promoted = home.deployments.promote(  # the controller promoted it; the agent was killed
        "churn-prod", reason="all 2 steps passed their guards", automatic=True
    )
    for at in (T0 + 4000, T0 + 5000):  # a second look changes nothing
        _runner(home, "a3").step(at)
    done = get_decision(home.store, decision.id)
    assert done.state is LoopState.PROMOTED, done.reason
    assert [s.state for s in done.steps].count(LoopState.PROMOTED) == 1
    assert done.steps[-1].evidence["revision"] == promoted.revision
    assert _canary_revisions(home) == [started.revision]
    assert home.deployments.get_deployment("churn-prod").revision == promoted.revision


def test_two_agents_racing_on_an_expired_lease_take_the_decision_over_once(
    home: Workspace,
) -> None:
    decision = _ready_decision(home)
    dead = claim_decision(
        home.store, decision.id, owner="gone-host:4242:deadbeef", now_ms=T0, lease_ms=3000
    )
    assert dead is not None and dead.lease_until_ms == T0 + 3000
    others = [Workspace(home.settings) for _ in range(2)]
    try:
        runners = [_runner(ws, f"a{i}") for i, ws in enumerate(others, start=1)]
        assert (
            claim_decision(  # the dead owner's lease still runs: nobody takes it
                others[0].store, decision.id, owner="a1", now_ms=T0 + 2999, lease_ms=3000
            )
            is None
        )
        barrier = threading.Barrier(2)
        events: dict[str, list[str]] = {}

        def race(runner: LoopRunner) -> None:
            barrier.wait(timeout=30)
            events[runner.owner] = [e.line for e in runner.step(T0 + 10_000)]

        threads = [threading.Thread(target=race, args=(r,)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        moved = get_decision(home.store, decision.id)
        assert moved.state is LoopState.CANARY, moved.reason
        assert [s.state for s in moved.steps].count(LoopState.CANARY) == 1
        assert len(_canary_revisions(home)) == 1
        movers = [owner for owner, lines in events.items() if any("canary" in x for x in lines)]
        assert len(movers) == 1, events
        assert moved.steps[-1].actor == f"agent:{movers[0]}"
    finally:
        for ws in others:
            ws.close()


def test_claims_racing_on_an_expired_lease_from_two_stores_succeed_once(
    home: Workspace,
) -> None:
    decision = _ready_decision(home)
    stores = [Store.open(home.settings.resolved_store_uri()) for _ in range(2)]
    try:
        for round_ in range(5):  # each round: the last winner's lease has run out
            at = T0 + 10_000 * (round_ + 1)
            barrier = threading.Barrier(2)
            won: list[str] = []

            def claim(store: Store, owner: str, at: int = at, barrier: threading.Barrier = barrier,
                      won: list[str] = won) -> None:  # fmt: skip
                barrier.wait(timeout=30)
                if claim_decision(store, decision.id, owner=owner, now_ms=at, lease_ms=3000):
                    won.append(owner)

            threads = [
                threading.Thread(target=claim, args=(s, f"r{round_}-{i}"))
                for i, s in enumerate(stores)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert len(won) == 1, (round_, won)
            held = get_decision(home.store, decision.id)
            assert (held.owner, held.lease_until_ms) == (won[0], at + 3000)
    finally:
        for opened in stores:
            opened.close()

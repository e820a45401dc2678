"""The agent on a controllable clock (no sleeps): a due schedule fires once across two agents;
a pipeline run whose owner stopped heartbeating is reclaimed exactly once when two agents race
(two Store objects on one database, SQLite and PostgreSQL), a fresh one is left alone, and the
trigger slot it held is free again; the runner heartbeats while a step runs and its late end
after a reclaim is refused; ``modelpilot agent`` through the installed executable
(``--once``, bad options exit 2, SIGTERM between iterations)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from loop_files import installed_exe
from sqlalchemy import select, update

import modelpilot as mp
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.errors import Conflict, InvalidInput
from modelpilot.loop.agent import Agent, AgentIteration, check_agent_options
from modelpilot.pipelines import (
    Decision,
    InlineExecutor,
    PipelineLauncher,
    PipelineServices,
    PipelineState,
    StepState,
    Trigger,
    define_trigger,
    engine,
    fire_trigger,
    get_pipeline_run,
    run_pipeline,
)
from modelpilot.pipelines.body import StepServices
from modelpilot.pipelines.lease import heartbeat
from modelpilot.pipelines.records import PlannedStep, create_pipeline_run, update_step
from modelpilot.store import Store
from modelpilot.store.schema import pipeline_runs, step_runs
from modelpilot.workspace import Workspace

TINY = str(Path(__file__).parents[1] / "pipelines" / "tiny_pipeline.py")
T0 = int(dt.datetime(2026, 3, 2, 10, 0, 30, tzinfo=dt.UTC).timestamp() * 1000)
MINUTE = 60_000
OWNER_FORM = re.compile(r"^[^:]+:\d+:[0-9a-f]{8}$")
RELEASE = threading.Event()


@mp.step(cache=False)
def wait_for_release(x: int) -> int:
    RELEASE.wait(30)
    return x


@mp.pipeline
def held(x: int = 1) -> object:
    return wait_for_release(x)


def _stale_run(store: Store, heartbeat_ms: int, owner: str = "gone-host:4242:deadbeef") -> str:
    """A RUNNING pipeline run of two steps (the first RUNNING) with the given heartbeat."""
    planned = [PlannedStep("a", "a", (), 1), PlannedStep("b", "b", ("a",), 1)]
    run = create_pipeline_run(
        store,
        pipeline="p",
        target="x.py:p",
        params={},
        run_id=None,
        executor="inline",
        steps=planned,
        owner=owner,
    )
    update_step(store, run.steps[0].id, [StepState.PENDING], state=StepState.RUNNING, attempt=1)
    with store.write() as conn:
        conn.execute(
            update(pipeline_runs)
            .where(pipeline_runs.c.id == run.id)
            .values(heartbeat_ms=heartbeat_ms)
        )
    return run.id


def test_a_due_schedule_fires_once_and_a_second_agent_at_that_time_fires_nothing(
    ws: Workspace,
) -> None:
    define_trigger(
        ws.store,
        name="hourly",
        target=f"{TINY}:tiny",
        params=["x=5"],
        schedule="0 * * * *",
        actor="t",
        now_ms=T0,
    )
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    executor = InlineExecutor(
        services=StepServices(ws.datasets, ws.registry), attach=ws.attached_run
    )
    launch = PipelineLauncher(services, executor)
    clock = [T0 + 30 * MINUTE]  # 10:30:30: nothing due yet
    first = Agent(ws.store, clock=lambda: clock[0], launch=launch, agent_id="a1")
    assert first.iterate().lines() == []
    clock[0] = T0 + 60 * MINUTE  # 11:00:30: the 11:00 occurrence is due
    done = first.iterate()
    [fired] = done.firings
    assert fired.decision is Decision.FIRED and fired.actor == "agent:a1"
    assert fired.pipeline_run_id and fired.error is None
    assert done.lines() == [
        f"fired trigger hourly: schedule 0 * * * * at 2026-03-02 11:00 UTC -> pipeline run "
        f"{fired.pipeline_run_id[:8]}"
    ]
    run = get_pipeline_run(ws.store, fired.pipeline_run_id)
    assert run.state is PipelineState.SUCCEEDED
    assert run.steps[0].output == {"kind": "value", "value": 10}
    with ws.store.read() as conn:
        owner = conn.execute(
            select(pipeline_runs.c.owner).where(pipeline_runs.c.id == run.id)
        ).scalar_one()
    assert OWNER_FORM.match(owner), owner  # host:pid:random
    second = Agent(ws.store, clock=lambda: clock[0], launch=launch, agent_id="a2")
    assert second.iterate() == AgentIteration(1, clock[0], (), ())
    assert first.iterate().firings == ()


def test_two_agents_reclaim_each_stale_run_exactly_once_and_free_its_trigger_slot(
    ws: Workspace,
) -> None:
    now = now_ms()
    define_trigger(ws.store, name="by-hand", target=f"{TINY}:tiny", actor="t", now_ms=now)
    held: list[str] = []

    def launch(trigger: Trigger, link: Callable[[str], None]) -> str:
        """Starts a run that stays RUNNING: its owner then dies (stops heartbeating)."""
        held.append(_stale_run(ws.store, now - 10 * MINUTE))
        link(held[-1])
        return held[-1]

    fire_trigger(ws.store, "by-hand", now, actor="t", launch=launch)
    refused = fire_trigger(ws.store, "by-hand", now, actor="t", launch=launch)
    assert refused.reason.startswith("concurrency: 1 of at most 1 runs")
    stale = held + [_stale_run(ws.store, now - (3 + i) * MINUTE) for i in range(4)]
    fresh = _stale_run(ws.store, now - 1000, owner="alive:1:0000beef")
    uri = ws.store.engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(2)
    results: list[AgentIteration] = []
    errors: list[BaseException] = []

    def agent(slot: int) -> None:
        store = Store.open(uri)
        try:
            barrier.wait(timeout=30)
            results.append(Agent(store, clock=lambda: now, agent_id=f"a{slot}").iterate())
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=agent, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    reclaimed = [r.pipeline_run_id for done in results for r in done.reclaimed]
    assert sorted(reclaimed) == sorted(stale)  # each once, by one agent or the other
    stamp = dt.datetime.fromtimestamp((now - 10 * MINUTE) / 1000, tz=dt.UTC)
    reason = (
        "abandoned: owner gone-host:4242:deadbeef stopped heartbeating at "
        f"{stamp:%Y-%m-%d %H:%M:%S} UTC"
    )
    first = get_pipeline_run(ws.store, held[0])
    assert first.state is PipelineState.FAILED and first.error == reason
    assert [(s.state, s.error) for s in first.steps] == [
        (StepState.FAILED, reason),
        (StepState.SKIPPED, None),
    ]
    line = next(x for done in results for x in done.lines() if held[0][:8] in x)
    assert line == f"reclaimed pipeline run {held[0][:8]} (p): {reason}"
    assert get_pipeline_run(ws.store, fresh).state is PipelineState.RUNNING
    assert heartbeat(ws.store, fresh, "alive:1:0000beef", now)
    assert not heartbeat(ws.store, held[0], "gone-host:4242:deadbeef", now)  # lease lost
    again = Agent(ws.store, clock=lambda: now).iterate()
    assert again.reclaimed == ()
    assert fire_trigger(ws.store, "by-hand", now + 1, actor="t", launch=launch).is_fired


def test_the_runner_heartbeats_while_a_step_runs_and_stops_once_reclaimed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "HEARTBEAT_INTERVAL_S", 0.02)
    RELEASE.clear()
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    executor = InlineExecutor(
        services=StepServices(ws.datasets, ws.registry), attach=ws.attached_run
    )
    outcome: list[BaseException | object] = []

    def runner() -> None:
        try:
            outcome.append(
                run_pipeline(held, {}, services=services, executor=executor, target="test:held")
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=runner)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        row = None
        while time.monotonic() < deadline:  # the heartbeat moves past the run's start
            with ws.store.read() as conn:
                row = conn.execute(select(pipeline_runs)).first()
            if row is not None and row.heartbeat_ms > row.created_ms:
                break
            time.sleep(0.01)  # poll interval, bounded by the deadline
        assert row is not None and row.heartbeat_ms > row.created_ms, row
        assert row.state == "RUNNING" and OWNER_FORM.match(row.owner)
        later = now_ms() + 10 * MINUTE  # an agent whose clock says the owner went quiet
        found: tuple[Any, ...] = ()
        for _ in range(100):  # a beat landing between the agent's read and its conditional
            found = Agent(ws.store, clock=lambda: later).iterate().reclaimed  # update: retry
            if found:
                break
        [reclaimed] = found
        assert reclaimed.pipeline_run_id == row.id and reclaimed.owner == row.owner
    finally:
        RELEASE.set()
        thread.join(timeout=30)
    [raised] = outcome
    assert isinstance(raised, Conflict)  # the owner's late end is refused, not recorded
    run = get_pipeline_run(ws.store, row.id)
    assert run.state is PipelineState.FAILED and run.error == reclaimed.reason
    assert run.steps[0].state is StepState.FAILED
    assert run.run_id is not None and run.steps[0].run_id is not None
    assert ws.get_run(run.run_id).status.value == "KILLED"  # the parent is not left RUNNING
    # the step's own run records how the step body ended (it finished once released)
    assert ws.get_run(run.steps[0].run_id).status.value in ("KILLED", "FINISHED")


# --- the installed executable ---------------------------------------------------------------


def test_a_step_its_owner_starts_while_an_agent_reclaims_the_run_ends_failed(
    ws: Workspace,
) -> None:
    """The owner's PENDING -> RUNNING of a step, committed while the reclaim waits on it: the
    reclaim decides on the committed state (FAILED), not the one it first saw (on PostgreSQL
    a step left RUNNING here later ended SUCCEEDED inside a FAILED run, as CI once saw)."""
    run_key = _stale_run(ws.store, heartbeat_ms=T0)
    step_b = get_pipeline_run(ws.store, run_key).steps[1]
    found: list[Any] = []
    with ws.store.write() as owner:  # the owner's transaction, still open
        owner.execute(
            update(step_runs)
            .where(step_runs.c.id == step_b.id)
            .values(state=StepState.RUNNING.value, attempt=1)
        )
        later = Agent(ws.store, clock=lambda: T0 + 10 * MINUTE)
        agent = threading.Thread(target=lambda: found.extend(later.iterate().reclaimed))
        agent.start()
        _until_a_transaction_waits(ws.store)
    agent.join(timeout=60)
    assert not agent.is_alive()
    [reclaimed] = found
    assert reclaimed.pipeline_run_id == run_key
    run = get_pipeline_run(ws.store, run_key)
    assert run.state is PipelineState.FAILED
    assert [s.state for s in run.steps] == [StepState.FAILED, StepState.FAILED]
    assert run.steps[1].error == reclaimed.reason


def _until_a_transaction_waits(store: Store) -> None:
    """On PostgreSQL, until another session waits for a row lock (bounded: 30 s); SQLite's
    second writer waits at BEGIN IMMEDIATE for the open write, nothing to watch there."""
    if store.dialect != "postgresql":
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'UPDATE step_runs%%' AND datname = current_database()"
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)  # poll interval, bounded by the deadline
    raise AssertionError("the agent's reclaim never waited for the owner's open transaction")


@pytest.fixture(scope="module")
def exe() -> str:
    return installed_exe()


@pytest.fixture
def home(
    store_env: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Settings]:
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    shutil.copy(TINY, tmp_path / "tiny_pipeline.py")
    return tmp_path, Settings()


def _agent(exe: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, "agent", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=120,
        check=False,
    )


def test_agent_once_prints_its_decisions(exe: str, home: tuple[Path, Settings]) -> None:
    folder, settings = home
    store = Store.open(settings.resolved_store_uri())
    try:
        an_hour_ago = now_ms() - 60 * MINUTE
        define_trigger(
            store,
            name="minutely",
            target=str(folder / "tiny_pipeline.py:tiny"),
            schedule="* * * * *",
            actor="t",
            now_ms=an_hour_ago,
        )
        stale = _stale_run(store, an_hour_ago)
    finally:
        store.close()
    ran = _agent(exe, folder, "--once")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert re.match(r"^agent [^:]+:\d+:[0-9a-f]{8}: every 30 s, lease 120 s$", lines[0])
    assert lines[1].startswith(
        f"reclaimed pipeline run {stale[:8]} (p): abandoned: owner gone-host:4242:deadbeef "
        "stopped heartbeating at "
    )
    # the hour's earlier minutes are recorded as missed (one line), only the newest fires
    assert re.match(
        r"^skipped trigger minutely: missed (59|60) schedule time\(s\) while no evaluator "
        r"decided \(recorded; only the newest may fire\)$",
        lines[2],
    ), lines
    assert re.match(
        r"^fired trigger minutely: schedule \* \* \* \* \* at .* -> pipeline run "
        r"[0-9a-f]{8}$",
        lines[3],
    ), lines
    assert lines[4].endswith(": stopped after 1 iteration(s)")


def test_bad_options_exit_2_naming_the_option(
    exe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path / "home"))
    bad = _agent(exe, tmp_path, "--interval-s", "0")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "--interval-s must be more than 0 seconds; got 0." in bad.stderr, bad.stderr
    # the agent inside the server names the server's own option
    server = subprocess.run(
        [exe, "server", "--agent", "--agent-interval-s", "0", "--port", "1"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert server.returncode == 2, server.stdout + server.stderr
    assert "--agent-interval-s must be more than 0 seconds; got 0." in server.stderr
    assert "modelpilot server on" not in server.stdout  # nothing started
    for options, message in (
        ({"lease_s": -5.0}, "--lease-s must be more than 0 seconds; got -5"),
        ({"max_iterations": 0}, "--max-iterations must be 1 or more; got 0."),
    ):
        given = {"interval_s": 30.0, "lease_s": 120.0, "max_iterations": None, **options}
        with pytest.raises(InvalidInput, match=re.escape(message)):
            check_agent_options(**given)  # type: ignore[arg-type]


def test_sigterm_stops_the_agent_between_iterations(exe: str, tmp_path: Path) -> None:
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "home")}
    env.pop("MODELPILOT_STORE_URI", None)
    proc = subprocess.Popen(
        [exe, "agent", "--interval-s", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "iteration 1: nothing due" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "iteration 1: nothing due" in seen, seen
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # the 600 s wait ends at once
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping after this iteration" in out
    assert out.rstrip().endswith(": stopped after 1 iteration(s)")


def test_a_failed_iteration_is_reported_and_the_agent_goes_on_when_asked(ws: Workspace) -> None:
    calls = iter([RuntimeError("database briefly away"), T0, T0 + MINUTE])

    def clock() -> int:
        now = next(calls)
        if isinstance(now, Exception):
            raise now
        return now

    errors: list[Exception] = []
    agent = Agent(ws.store, clock=clock, agent_id="a1")
    done = agent.run(
        interval_s=0.001, stop=threading.Event(), max_iterations=3, on_error=errors.append
    )
    assert done == 3 and [str(e) for e in errors] == ["database briefly away"]
    assert agent.iterations == 2
    with pytest.raises(RuntimeError, match="database briefly away"):  # without on_error: ends
        Agent(
            ws.store, clock=lambda: (_ for _ in ()).throw(RuntimeError("database briefly away"))
        ).run(interval_s=0.001, stop=threading.Event(), max_iterations=3)

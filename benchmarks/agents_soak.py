"""Two `modelpilot agent` processes on one PostgreSQL database: every trigger occurrence is
decided exactly once (issue 13).

    python benchmarks/agents_soak.py --seconds 300     # MODELPILOT_TEST_POSTGRES_URI or --uri
    python benchmarks/agents_soak.py --seconds 60 --uri postgresql+psycopg://postgres@127.0.0.1/test

In a fresh schema (dropped afterwards) two agents (the installed executable, `--interval-s
0.5`) race while, for --seconds, producers keep making occurrences: new versions of two
datasets (each watched by several `on_dataset` triggers), firing alerts from two threads
(`on_alert` triggers, one filtered on a subject), cron minutes (`* * * * *` triggers), and
`modelpilot pipelines trigger fire` from a third process (a manual trigger, a manual trigger
with a budget of 3, and a dataset trigger with a budget the agents also spend). Most triggers
have no limits in reach (cooldown 0, budget 1000, 100 at once); a few have a cooldown or a
small budget. Then the producers stop, the agents run until every occurrence is decided and
every fired run has ended (polled, with a deadline), get SIGTERM and must exit 0, and the
database is checked:

  - each occurrence (dataset version after the trigger, alert event, manual fire, cron
    minute from the one due when the trigger was committed up to the stop; one an agent was
    too busy to decide in time is decided skipped as missed) has exactly one decision; none
    is missing, none is unexpected;
  - each fired decision has one pipeline run, which SUCCEEDED; no run is unlinked;
  - a trigger without limits in reach never skips; budgets and cooldowns hold;
  - both agents decided occurrences (the work was shared).

Prints a summary; exits 1 on any violation. tests/integration/loop/test_agents_soak.py runs
the same for about 12 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.manager import Alert
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.pipelines import Trigger, TriggerKind, define_trigger, list_triggers
from modelpilot.pipelines.triggers import latest_cron_ms
from modelpilot.store import Store
from modelpilot.store.schema import datasets, events, pipeline_runs, trigger_firings
from modelpilot.workspace import Workspace

MINUTE_MS = 60_000
# What the third process fires by hand: manual triggers, and two the agents also decide.
MANUAL_TARGETS = ["by-hand", "data-soak-a", "by-hand-budget", "data-soak-b-budget"]
UNLIMITED = {"cooldown_s": 0.0, "daily_budget": 1000, "max_concurrent": 100}
# One quick step; the agents run it with the subprocess executor.
PIPELINE = Path(__file__).resolve().parents[1] / "tests/integration/pipelines/tiny_pipeline.py"


@dataclass(frozen=True)
class Load:
    """How much the producers make, and how fast the agents poll."""

    seconds: float
    schedule_triggers: int = 20
    version_every_s: float = 30.0  # per dataset; the two alternate
    alert_every_s: float = 20.0  # the two alert lanes alternate
    manual_every_s: float = 10.0
    small_budget: int = 3  # the daily budget of the triggers that have one
    interval_s: float = 0.5
    drain_timeout_s: float = 600.0


@dataclass
class Report:
    """What the soak saw, and every rule it found broken."""

    duration_s: float = 0.0
    occurrences: int = 0
    fired: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    by_agent: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    pipeline_runs: int = 0
    run_s: float = 0.0  # the median pipeline run, created to ended
    manual_fires: int = 0
    duplicates: int = 0
    missing: int = 0
    drain_s: float = 0.0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        agents = ", ".join(f"{k} {v}" for k, v in sorted(self.by_agent.items()))
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        lines = [
            f"duration: {self.duration_s:.0f} s of production, {self.drain_s:.0f} s to drain",
            f"occurrences: {self.occurrences} ({kinds})",
            f"fired: {self.fired}; skipped: {sum(self.skipped.values())} ({skipped})",
            f"decisions by actor: {agents}",
            f"manual fires (third process): {self.manual_fires}",
            f"pipeline runs: {self.pipeline_runs} (median {self.run_s:.1f} s each)",
            f"duplicates: {self.duplicates}; missing: {self.missing}",
            f"violations: {len(self.violations)}",
            *(f"  - {v}" for v in self.violations[:50]),
        ]
        return "\n".join(lines)


def modelpilot_executable() -> str:
    """The installed ``modelpilot`` next to this Python (or on PATH)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("modelpilot", path=search)
    if found is None:
        raise SystemExit(f"No `modelpilot` executable on {search}: pip install -e . first.")
    return found


def soak(uri: str, load: Load, workdir: Path) -> Report:
    """Run the soak on the (empty) store at ``uri``; the report lists every violation."""
    env = {**os.environ, "MODELPILOT_HOME": str(workdir / "home"), "MODELPILOT_STORE_URI": uri}
    settings = Settings(home=workdir / "home", store_uri=uri)
    ws = Workspace(settings)
    report = Report()
    with ExitStack() as stack:
        agents = [stack.enter_context(_agent(env, workdir, i, load.interval_s)) for i in (1, 2)]
        _wait_for(lambda: all(a.started() for a in agents), 120, "both agents to iterate")
        made, first_due = _make_triggers(ws.store, f"{PIPELINE}:tiny", load)
        producers = _Producers(ws, env, workdir, load)
        began = time.monotonic()
        producers.start()
        producers.stopped.wait(load.seconds)  # the soak's length, not a synchronisation
        stop_ms = producers.stop()
        report.duration_s = time.monotonic() - began
        drained = time.monotonic()
        expected = _expected(ws.store, made, first_due, stop_ms)
        if not _wait_for(lambda: _settled(ws.store, expected), load.drain_timeout_s, None):
            report.violations.append(
                f"not settled within {load.drain_timeout_s:g} s after the producers stopped"
            )
        report.drain_s = time.monotonic() - drained
        codes = [a.terminate() for a in agents]
        report.violations += [
            f"agent {a.agent_id} exited {c}: {a.tail()}"
            for a, c in zip(agents, codes, strict=True)
            if c != 0
        ]
        report.violations += producers.errors
        _verify(ws.store, made, expected, producers.manual, stop_ms, report)
        ids = {f"agent:{a.agent_id}" for a in agents}
        report.violations += [
            f"{actor} made no decisions: the work was not shared"
            for actor in sorted(ids)
            if report.by_agent[actor] == 0
        ]
    ws.close()
    return report


# --- the agents -----------------------------------------------------------------------------


class _RunningAgent:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def started(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited {self.proc.returncode}: {self.tail()}")
        return "\niteration " in self.text()

    @property
    def agent_id(self) -> str:
        first = self.text().split("\n", 1)[0]  # "agent host:pid:random: every 0.5 s, ..."
        return first.removeprefix("agent ").split(": every", 1)[0]

    def tail(self) -> str:
        return self.text()[-2000:]

    def terminate(self) -> int | None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=300)  # it finishes the iteration it is in
        except subprocess.TimeoutExpired:
            return None


@contextmanager
def _agent(
    env: dict[str, str], workdir: Path, n: int, interval_s: float
) -> Iterator[_RunningAgent]:
    log = workdir / f"agent-{n}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [modelpilot_executable(), "agent", "--interval-s", str(interval_s)],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env,
        )  # fmt: skip
    try:
        yield _RunningAgent(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --- triggers and producers -----------------------------------------------------------------


def _make_triggers(store: Store, target: str, load: Load) -> tuple[list[Trigger], dict[str, int]]:
    """The triggers, and per cron trigger the first minute it must decide: the one due when
    it was committed (older ones are not caught up, docs/pipelines.md)."""
    now = now_ms()
    minute = latest_cron_ms("* * * * *", now)
    # The current minute is due at once unless it is nearly over (then the next one, soon).
    schedule_ms = minute - 1 if now - minute < 40_000 else now
    first_due: dict[str, int] = {}

    def make(name: str, at: int = now, **spec: Any) -> None:
        limits = {**UNLIMITED, **{k: spec.pop(k) for k in list(spec) if k in UNLIMITED}}
        made = define_trigger(store, name=name, target=target, params=["x=3"], actor="soak",
                              now_ms=at, **limits, **spec)  # fmt: skip
        if made.kind is TriggerKind.SCHEDULE:
            first_due[made.id] = latest_cron_ms(made.spec["cron"], now_ms())

    # A quarter of the cron triggers without limits, the others with a small budget or a
    # cooldown of a few minutes: 20 decisions a minute, fewer runs than the agents can start.
    budget = load.small_budget
    cron_limits: list[dict[str, Any]] = [
        {}, {"daily_budget": budget}, {"cooldown_s": 150.0},
        {"daily_budget": budget + 1, "cooldown_s": 90.0},
    ]  # fmt: skip
    for i in range(load.schedule_triggers):
        make(f"cron-{i:02d}", schedule_ms, schedule="* * * * *", **cron_limits[i % 4])
    for name in ("soak-a", "soak-b"):
        make(f"data-{name}", dataset=name)
        make(f"data-{name}-cooldown", dataset=name, cooldown_s=45.0)
        make(f"data-{name}-budget", dataset=name, daily_budget=budget)
    make("alert-any", alert_rule="soak-drift")
    make("alert-svc-1", alert_rule="soak-drift", alert_subject="svc-1")
    make("alert-limited", alert_rule="soak-drift", cooldown_s=15.0, daily_budget=budget + 1)
    make("by-hand")
    make("by-hand-budget", daily_budget=budget)
    return list_triggers(store), first_due


class _Producers:
    """Dataset versions, firing alerts (two threads) and manual fires, until ``stop()``."""

    def __init__(self, ws: Workspace, env: dict[str, str], workdir: Path, load: Load) -> None:
        self.ws, self.env, self.workdir, self.load = ws, env, workdir, load
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self.manual: Counter[tuple[str, int]] = Counter()  # (trigger, exit code)
        self.threads = [
            threading.Thread(target=self._guarded, args=(self._versions,)),
            threading.Thread(target=self._guarded, args=(lambda: self._alerts(0),)),
            threading.Thread(target=self._guarded, args=(lambda: self._alerts(1),)),
            threading.Thread(target=self._guarded, args=(self._manual_fires,)),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> int:
        """Stop making occurrences; the time (ms) after the last one was made."""
        self.stopped.set()
        for t in self.threads:
            t.join(timeout=300)
        return now_ms()

    def _guarded(self, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception as exc:
            self.errors.append(f"producer failed: {type(exc).__name__}: {exc}")

    def _versions(self) -> None:
        n = 0
        while not self.stopped.wait(self.load.version_every_s / 2):
            n += 1
            frame = pd.DataFrame({"n": [n, n + 1], "v": [n * 0.5, n * 1.5]})
            self.ws.log_dataset(frame, ("soak-a", "soak-b")[n % 2])

    def _alerts(self, lane: int) -> None:
        alerts, n = LocalAlerts(self.ws.store), 0
        while not self.stopped.wait(self.load.alert_every_s * 2):
            n += 1
            at = now_ms()
            alerts.record_alert(
                Alert(rule="soak-drift", subject=f"svc-{lane}", metric="psi", value=0.3 + n,
                      threshold=0.2, op=">", severity="warning", state="firing", since_ms=at,
                      time_ms=at, message=f"lane {lane} alert {n}")
            )  # fmt: skip

    def _manual_fires(self) -> None:
        n = 0
        while not self.stopped.wait(self.load.manual_every_s):
            name = MANUAL_TARGETS[n % len(MANUAL_TARGETS)]
            n += 1
            done = subprocess.run(
                [modelpilot_executable(), "pipelines", "trigger", "fire", name],
                capture_output=True, text=True, cwd=self.workdir, env=self.env, timeout=300,
                check=False,
            )  # fmt: skip
            self.manual[(name, done.returncode)] += 1
            if done.returncode not in (0, 4):  # 4: held back by the budget
                self.errors.append(f"trigger fire {name} exited {done.returncode}: "
                                   f"{(done.stdout + done.stderr)[-500:]}")  # fmt: skip


# --- what must have been decided, and the checks --------------------------------------------


def _expected(
    store: Store, made: list[Trigger], first_due: dict[str, int], stop_ms: int
) -> dict[str, set[str]]:
    """Per trigger id, the occurrence keys it must decide (manual fires are counted apart)."""
    out: dict[str, set[str]] = {}
    with store.read() as conn:
        for t in made:
            if t.kind is TriggerKind.SCHEDULE:
                keys = set()
                minute = latest_cron_ms(t.spec["cron"], stop_ms)
                while minute > t.created_ms and minute >= first_due[t.id]:
                    keys.add(f"schedule:{minute}")
                    minute -= MINUTE_MS
            elif t.kind is TriggerKind.DATASET:
                rows = conn.execute(
                    select(datasets.c.digest).where(
                        datasets.c.name == t.spec["dataset"],
                        datasets.c.created_ms > t.created_ms,
                    )
                ).scalars()
                keys = {f"dataset:{d}" for d in rows}
            elif t.kind is TriggerKind.ALERT:
                keys = {f"alert:{i}" for i in _alert_ids(conn, t)}
            else:
                keys = set()
            out[t.id] = keys
    return out


def _alert_ids(conn: Any, t: Trigger) -> list[int]:
    subject = t.spec.get("subject")
    rows = conn.execute(
        select(events.c.id, events.c.subject, events.c.payload).where(
            events.c.kind == "alert.firing", events.c.id > t.since_event_id
        )
    ).all()
    return [
        r.id
        for r in rows
        if r.payload.get("rule") == t.spec["rule"]
        and (subject is None or r.subject == f"alert:{subject}")
    ]


def _settled(store: Store, expected: dict[str, set[str]]) -> bool:
    """Every expected occurrence decided, and the run of each one that fired ended. (Cron
    minutes after the stop keep coming; SIGTERM lets an agent finish the runs it started.)"""
    with store.read() as conn:
        rows = conn.execute(
            select(
                trigger_firings.c.trigger_id, trigger_firings.c.occurrence,
                trigger_firings.c.decision, trigger_firings.c.error, pipeline_runs.c.state,
            ).select_from(
                trigger_firings.outerjoin(
                    pipeline_runs, pipeline_runs.c.id == trigger_firings.c.pipeline_run_id
                )
            )
        ).all()  # fmt: skip
    have = {(r.trigger_id, r.occurrence): r for r in rows}
    for tid, keys in expected.items():
        for key in keys:
            r = have.get((tid, key))
            if r is None or (r.decision == "fired" and r.error is None and
                             r.state in (None, "RUNNING")):  # fmt: skip
                return False
    return True


def _verify(
    store: Store,
    made: list[Trigger],
    expected: dict[str, set[str]],
    manual: Counter[tuple[str, int]],
    stop_ms: int,
    report: Report,
) -> None:
    by_id = {t.id: t for t in made}
    with store.read() as conn:
        rows = conn.execute(select(trigger_firings)).all()
        ran = conn.execute(select(pipeline_runs)).all()
    runs = {r.id: r.state for r in ran}
    lengths = sorted((r.ended_ms or 0) - r.created_ms for r in ran)
    report.run_s = lengths[len(lengths) // 2] / 1000 if lengths else 0.0
    seen: Counter[tuple[str, str]] = Counter((r.trigger_id, r.occurrence) for r in rows)
    report.duplicates = sum(1 for c in seen.values() if c > 1)
    report.violations += [f"{by_id[t].name} {o}: {c} decisions" for (t, o), c in seen.items()
                          if c > 1]  # fmt: skip
    for tid, keys in expected.items():
        gone = sorted(k for k in keys if (tid, k) not in seen)
        report.missing += len(gone)
        report.violations += [f"{by_id[tid].name} {k}: no decision" for k in gone[:5]]
    for r in rows:
        t = by_id[r.trigger_id]
        kind = r.occurrence.split(":", 1)[0]
        report.by_kind[kind] += 1
        report.by_agent[r.actor] += 1
        late_cron = kind == "schedule" and int(r.occurrence.split(":")[1]) > stop_ms
        if kind != "manual" and not late_cron and r.occurrence not in expected[t.id]:
            report.violations.append(f"{t.name} {r.occurrence}: decided but never occurred")
        if r.decision == "skipped":
            report.skipped[r.reason.split(":", 1)[0]] += 1
            if _unfounded(t, r, rows):
                report.violations.append(f"{t.name} {r.occurrence}: skipped ({r.reason})")
            continue
        report.fired += 1
        if r.pipeline_run_id is None or r.error is not None:
            report.violations.append(f"{t.name} {r.occurrence}: fired, no run ({r.error})")
        elif runs.get(r.pipeline_run_id) != "SUCCEEDED":
            report.violations.append(
                f"{t.name} {r.occurrence}: run {r.pipeline_run_id[:8]} is "
                f"{runs.get(r.pipeline_run_id)}"
            )
    report.occurrences = len(rows)
    report.pipeline_runs = len(runs)
    linked = Counter(r.pipeline_run_id for r in rows if r.pipeline_run_id)
    report.violations += [f"pipeline run {i[:8]} is linked to {c} firings"
                          for i, c in linked.items() if c > 1]  # fmt: skip
    report.violations += [f"pipeline run {i[:8]} belongs to no firing" for i in runs
                          if i not in linked]  # fmt: skip
    _check_limits(rows, by_id, report)
    _check_manual(rows, by_id, manual, report)


def _unfounded(t: Trigger, row: Any, rows: list[Any]) -> bool:
    """A skip whose limit the trigger does not have, or never reached (the soak is shorter
    than 24 h: a budget reached stays reached, and firings never exceed it); a cron time
    skipped as missed when no newer cron time of its trigger was decided."""
    reason = row.reason
    if reason.startswith("missed"):
        return not any(r.trigger_id == t.id and r.due_ms > row.due_ms for r in rows)
    if reason.startswith("cooldown"):
        return t.cooldown_ms == 0
    if reason.startswith("daily budget"):
        fired = sum(1 for r in rows if r.trigger_id == t.id and r.decision == "fired")
        return fired < t.daily_budget
    return t.max_concurrent == 100  # concurrency: the soak never runs 100 at once


def _check_limits(rows: list[Any], by_id: dict[str, Trigger], report: Report) -> None:
    """Budgets (the soak is shorter than 24 h: all firings count) and cooldowns (between the
    agents' firings, which commit in decided order; a person's fire is not held by them)."""
    for tid, t in by_id.items():
        fired = sorted(r.decided_ms for r in rows if r.trigger_id == tid and r.decision == "fired")
        if len(fired) > t.daily_budget:
            report.violations.append(f"{t.name}: {len(fired)} fired, budget {t.daily_budget}")
        by_agents = sorted(
            r.decided_ms
            for r in rows
            if r.trigger_id == tid and r.decision == "fired" and r.actor.startswith("agent:")
        )
        gaps = [b - a for a, b in pairwise(by_agents)]
        if t.cooldown_ms and any(g < t.cooldown_ms for g in gaps):
            report.violations.append(
                f"{t.name}: fired {min(gaps)} ms after its last firing; cooldown {t.cooldown_ms} ms"
            )


def _check_manual(
    rows: list[Any],
    by_id: dict[str, Trigger],
    manual: Counter[tuple[str, int]],
    report: Report,
) -> None:
    """One decision per `trigger fire`: fired for exit 0, skipped for exit 4."""
    report.manual_fires = sum(manual.values())
    for name in MANUAL_TARGETS:
        mine = [r for r in rows if by_id[r.trigger_id].name == name and
                r.occurrence.startswith("manual:")]  # fmt: skip
        got = Counter(r.decision for r in mine)
        want = {"fired": manual[(name, 0)], "skipped": manual[(name, 4)]}
        if dict(got) != {k: v for k, v in want.items() if v}:
            report.violations.append(f"{name}: `trigger fire` exits {want}, decisions {dict(got)}")


def _wait_for(done: Callable[[], bool], timeout_s: float, what: str | None) -> bool:
    """Poll ``done`` until it holds or the deadline passes (then raise, naming ``what``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.25)  # a poll interval, bounded by the deadline
    if what is not None:
        raise TimeoutError(f"waited {timeout_s:g} s for {what}")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--uri", default=os.environ.get("MODELPILOT_TEST_POSTGRES_URI"))
    parser.add_argument("--schedule-triggers", type=int, default=20)
    parser.add_argument("--version-every-s", type=float, default=Load.version_every_s)
    parser.add_argument("--alert-every-s", type=float, default=Load.alert_every_s)
    parser.add_argument("--drain-timeout-s", type=float, default=Load.drain_timeout_s)
    args = parser.parse_args()
    if not args.uri or not args.uri.startswith("postgres"):
        sys.exit("Needs PostgreSQL: --uri or MODELPILOT_TEST_POSTGRES_URI.")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tracking import _pg_schema_uri

    uri, drop = _pg_schema_uri(args.uri)
    load = Load(
        seconds=args.seconds, schedule_triggers=args.schedule_triggers,
        version_every_s=args.version_every_s, alert_every_s=args.alert_every_s,
        drain_timeout_s=args.drain_timeout_s,
    )  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="mp-agents-soak-") as tmp:
            report = soak(uri, load, Path(tmp))
    finally:
        drop()  # type: ignore[operator]
    print(report.summary())
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()

"""``make demo``, the last part: the continuous-training loop runs itself.

The champion serves over real HTTP (a ``modelpilot serve`` process) while a thread sends it
traffic. Everything after the start is the agent's doing, the same :class:`Agent` with a
:class:`LoopRunner` and the subprocess executor that ``modelpilot agent`` runs, here in this
process every second on the real clock:

1. the population drifts; the monitor fires ``data-drift``; the policy's ``on_alert`` trigger
   retrains on the newest labelled window; the candidate beats the champion on the gate
   (non-inferiority against the champion on the same held-out rows); canary; promoted.
2. the population moves again and the monitor fires again, but the newest window's labels came
   through a broken join: the retrained model is worse than the champion, the gate's baseline
   check stops it, and the champion keeps serving.

The demo plays the world (which traffic arrives, which data lands); it never gives the loop a
command. The policy, the pipeline and the gate are files written into ``$MODELPILOT_HOME/loop``.

The monitor is the agent's too: the policy's ``monitoring:`` section has it score the last
10 s of traffic every 3 s, and its ``data-drift`` alert fires the ``on_alert`` trigger.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console

import modelpilot as mp
from modelpilot.clock import now_ms
from modelpilot.demo_data import make_churn
from modelpilot.loop import load_loop_policy, set_loop_policy
from modelpilot.loop.agent import Agent, AgentIteration
from modelpilot.loop.decisions import LoopDecision, LoopState, list_decisions
from modelpilot.loop.runner import LoopRunner
from modelpilot.pipelines import (
    PipelineLauncher,
    PipelineServices,
    SubprocessExecutor,
    worker_environment,
)
from modelpilot.pipelines.lease import owner_id
from modelpilot.workspace import Workspace

TARGET = "churned"
DRIFT_THRESHOLD = 0.2  # the share of drifted columns at which data-drift fires
# One OpenMP thread per process: the demo shares 2 cores with its server and its training
# worker, and HistGradientBoosting's thread pools, oversubscribed, made one gate take 190 s
# instead of 28 s (predicting one row at a time to measure latency).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
STORY_TIMEOUT_S = 300.0  # a scenario takes about a minute on 2 busy cores; this stops a hang

PIPELINE = '''\
"""The demo's training pipeline: the churn model, retrained on the newest labelled window."""

import modelpilot as mp
from modelpilot.demo import TARGET, build_model


@mp.step
def train(window: mp.DatasetVersion) -> mp.ModelVersion:
    frame = mp.load_dataset(window.ref)
    features, labels = frame.drop(columns=TARGET), frame[TARGET]
    model = build_model(max_depth=3, learning_rate=0.1).fit(features, labels)
    return mp.log_model(
        model,
        name="churn",
        input_example=features.head(5),
        datasets={"training": window},
        description=f"retrained on {window.ref}",
    )


@mp.pipeline
def retrain(data: mp.DatasetVersion) -> object:
    return train(data)
'''

GATE = """\
# What a retrained model must show before it serves (docs/evaluation.md).
metrics:
  roc_auc: {min: 0.65}       # a floor
baseline:                    # against the champion, on the same held-out rows
  confidence: 0.9
  max_drop: {roc_auc: 0.01}  # non-inferiority: the 90% lower bound may not lose > 0.01 AUC
"""

POLICY = """\
# The continuous-training policy of {deployment} (docs/continuous-training.md).
triggers:
  - on_alert: data-drift       # the monitor's drift rule...
    subject: {deployment}      # ...on this deployment
    cooldown: 15s              # short for the demo; an hour or more in production
    daily_budget: 3
training:
  pipeline: train.py:retrain
  params: {{data: churn-window}}  # the newest version: the latest labelled customers
evaluation:
  dataset: churn-eval          # held-out labelled customers (newest version)
  target: churned
  gate: gate.yaml
rollout:
  steps: [50, 100]
  min_requests_per_step: 150
  min_seconds_per_step: 0
  guards:
    # off: a model retrained for a changed relationship scores differently on purpose (PSI
    # 0.5 to 1.2 against the old champion here), and the gate judged it on labelled rows;
    # the error-rate and latency guards stay on
    max_prediction_psi: null
require_approval: false
monitoring:                    # the agent scores the last 10 s of traffic every 3 s
  window: 10s
  every: 3s
  rules:
    - {{name: data-drift, metric: drift.share_drifted, op: ">=", threshold: {threshold}}}
"""


def continuous_training(console: Console, champion: int) -> None:
    """Serve ``churn/<champion>`` under a continuous-training policy and let the agent run
    both scenarios; print its decisions as they happen, then the loop's history."""
    ws = mp.workspace()
    seed = _seed(ws)
    name = f"churn-loop-{int(time.time())}"
    folder = ws.settings.home / "loop"
    console.rule("[bold]9. Continuous training: the loop runs itself")
    mp.create_deployment(name, f"churn/{champion}")
    mp.log_dataset(make_churn(3000, seed=seed + 1), name="churn-eval", role="evaluation")
    _write_files(folder, name)
    loaded = load_loop_policy(folder / "loop.yaml")
    set_loop_policy(ws.store, name, loaded, actor="demo", now_ms=now_ms())
    console.print(
        f"Deployment {name} serves churn/{champion}. Policy {folder / 'loop.yaml'}: on alert "
        "data-drift retrain with train.py on the newest churn-window, gate against the "
        "champion (gate.yaml), canary 50% -> 100%.",
        highlight=False,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(name, port)
    traffic = Traffic(url, name, make_churn(2000, seed=seed + 2).drop(columns=TARGET))
    try:
        wait_ready(url, server)
        traffic.start()
        Story(console, ws, name, traffic, champion, seed).run(_agent(ws))
    finally:
        traffic.stop.set()
        if traffic.is_alive():
            traffic.join(timeout=30)
        server.terminate()
        server.wait(timeout=60)
    console.rule("[bold]11. The loop's record: modelpilot loop history")
    subprocess.run(
        [sys.executable, "-m", "modelpilot.cli.main", "loop", "history", name], check=True
    )


def _seed(ws: Workspace) -> int:
    """The seed of this run's data: 1000 per earlier run of this part in the same home, so a
    rerun logs new dataset versions (the same rows again would be the old version, and the
    newest ``churn-window`` would still be the last run's mislabelled one)."""
    earlier = [d for d in ws.deployments.list_deployments() if d.name.startswith("churn-loop-")]
    return 1000 * (len(earlier) + 1)


def _write_files(folder: Path, deployment: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(PIPELINE, encoding="utf-8")
    (folder / "gate.yaml").write_text(GATE, encoding="utf-8")
    (folder / "loop.yaml").write_text(
        POLICY.format(deployment=deployment, threshold=DRIFT_THRESHOLD), encoding="utf-8"
    )


def _agent(ws: Workspace) -> Agent:
    """What ``modelpilot agent`` builds: training in worker subprocesses, the loop's runner."""
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    executor = SubprocessExecutor(env={**worker_environment(ws.settings), **ONE_THREAD})
    launch = PipelineLauncher(services, executor)
    agent_id = owner_id()
    loop = LoopRunner(ws, owner=agent_id, actor=f"agent:{agent_id}", lease_ms=120_000)
    return Agent(ws.store, clock=now_ms, launch=launch, agent_id=agent_id, loop=loop)


class Traffic(threading.Thread):
    """Sends the deployment one customer per request, from the population it is given, and
    remembers which model version answered the last requests."""

    def __init__(self, url: str, deployment: str, population: pd.DataFrame) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.url = url
        self.deployment = deployment
        self.stop = threading.Event()
        self.answered_by: deque[int] = deque(maxlen=200)
        self.sent = 0
        self.error: str | None = None
        self._rows = population.to_dict(orient="records")

    def switch(self, population: pd.DataFrame) -> None:
        """From now on, send customers of ``population``."""
        self._rows = population.to_dict(orient="records")

    def run(self) -> None:
        try:
            with httpx.Client(timeout=30) as client:
                while not self.stop.is_set():
                    rows = self._rows
                    reply = client.post(
                        f"{self.url}/predict/{self.deployment}", json=[rows[self.sent % len(rows)]]
                    )
                    reply.raise_for_status()
                    self.answered_by.append(int(reply.json()["version"]))
                    self.sent += 1
                    if self.sent % 50 == 0:  # the monitor and the rollout read the log
                        client.post(f"{self.url}/admin/flush").raise_for_status()
                    self.stop.wait(0.004)  # pacing: about 150 customers a second
        except Exception as exc:  # the story stops with this message
            self.error = f"{type(exc).__name__}: {exc}"


class Story:
    """The world around the loop, moved on after each agent iteration; stops the agent when
    both scenarios ended."""

    def __init__(
        self,
        console: Console,
        ws: Workspace,
        deployment: str,
        traffic: Traffic,
        champion: int,
        seed: int,
    ) -> None:
        self.console = console
        self.ws = ws
        self.deployment = deployment
        self.traffic = traffic
        self.champion = champion
        self.seed = seed
        self.since_ms = now_ms()  # a clean monitoring window must end after this
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.shown_gates: set[str] = set()
        self.phase: Callable[[], None] = self._calm

    def run(self, agent: Agent) -> None:
        """Iterate the agent every second until both scenarios ended."""
        agent.run(interval_s=1.0, stop=self.stop, on_iteration=self.after)

    def say(self, line: str, style: str = "") -> None:
        """One timestamped line."""
        text = f"[{style}]{line}[/{style}]" if style else line
        self.console.print(
            f"[dim]{time.monotonic() - self.started:6.1f}s[/dim] {text}",
            highlight=False,
            soft_wrap=True,
        )

    def after(self, done: AgentIteration) -> None:
        """Print the agent's decisions (monitor windows only when an alert changes), move
        the world on."""
        for line in done.lines():
            if line.startswith("monitored ") and " -> alert " not in line:
                continue  # a window the rules are quiet about: _clean_window reads them
            self.say(line, "yellow" if line.startswith("monitored ") else "")
        self._show_gates()
        if self.traffic.error is not None:
            raise RuntimeError(f"the demo's traffic stopped: {self.traffic.error}")
        if time.monotonic() - self.started > STORY_TIMEOUT_S:
            raise RuntimeError(
                f"the loop did not finish within {STORY_TIMEOUT_S:g} s; see `modelpilot loop "
                f"history {self.deployment}` and `modelpilot pipelines list`"
            )
        self.phase()

    # -- the world, phase by phase ----------------------------------------------------

    def _calm(self) -> None:
        if not self._clean_window():
            return
        self.say(
            f"the monitor watched a window of normal traffic ({self.traffic.sent} requests "
            "so far): no drift"
        )
        self.say(
            "world: the population changes (less usage, more support calls, and a competitor's "
            "price cut makes expensive plans churn); their labelled history lands as "
            "churn-window and churn-eval",
            "cyan",
        )
        drifted = {"shift": 0.6, "price_sensitivity": 1.0}
        seed = self.seed
        mp.log_dataset(make_churn(6000, seed=seed + 3, **drifted), name="churn-window")
        eval_rows = make_churn(3000, seed=seed + 4, **drifted)
        mp.log_dataset(eval_rows, name="churn-eval", role="evaluation")
        self.traffic.switch(make_churn(2000, seed=seed + 5, **drifted).drop(columns=TARGET))
        self.phase = self._first_decision

    def _first_decision(self) -> None:
        decision = self._ended(0, LoopState.PROMOTED)
        if decision is None:
            return
        self.champion = int((decision.candidate or "").rpartition("/")[2])
        self.since_ms = now_ms()
        self.console.rule("[bold]10. A retraining on broken data is stopped at the gate")
        self.phase = self._settled

    def _settled(self) -> None:
        if not self._clean_window():  # the new champion's traffic no longer drifts
            return
        self.say(
            f"the monitor sees no drift against churn/{self.champion}'s own training window",
        )
        self.say(
            "world: the population moves again (usage falls further); the newest labelled "
            "window lands as churn-window, but a broken join gave half its customers another "
            "customer's label",
            "cyan",
        )
        moved = {"shift": 1.2, "price_sensitivity": 1.0}
        window = make_churn(6000, seed=self.seed + 6, **moved)
        mp.log_dataset(_mislabel(window, share=0.5, seed=self.seed + 7), name="churn-window")
        traffic = make_churn(2000, seed=self.seed + 8, **moved)
        self.traffic.switch(traffic.drop(columns=TARGET))
        self.phase = self._second_decision

    def _second_decision(self) -> None:
        decision = self._ended(1, LoopState.STOPPED_AT_GATE)
        if decision is None:
            return
        stable = mp.get_deployment(self.deployment).config.stable.ref
        served = list(self.traffic.answered_by)
        by_champion = served.count(self.champion)
        self.say(
            f"{stable} keeps serving: it answered {by_champion} of the last {len(served)} requests",
            "green",
        )
        if stable != f"churn/{self.champion}" or by_champion != len(served):
            raise RuntimeError(f"the champion churn/{self.champion} should still serve alone")
        self.stop.set()

    # -- helpers --------------------------------------------------------------------------

    def _ended(self, index: int, expected: LoopState) -> LoopDecision | None:
        """The deployment's ``index``-th decision (oldest first) once it ended ``expected``;
        RuntimeError when it ended otherwise."""
        decisions = list_decisions(self.ws.store, deployment=self.deployment)[::-1]
        if len(decisions) <= index or not decisions[index].state.is_final:
            return None
        decision = decisions[index]
        if decision.state is not expected:
            raise RuntimeError(
                f"scenario {index + 1} ended {decision.state.value}, not {expected.value}: "
                f"{decision.reason}"
            )
        return decision

    def _clean_window(self) -> bool:
        """True when the newest monitoring report ended after ``since_ms``, scored the
        champion on traffic and found less drift than the rule fires at."""
        newest = self.ws.monitoring.list_reports(self.deployment, limit=1)
        if not newest:
            return False
        report = newest[0]
        share = report.figures.get("drift.share_drifted")
        return (
            report.window_end_ms > self.since_ms
            and report.model == f"churn/{self.champion}"
            and share is not None
            and share < DRIFT_THRESHOLD
        )

    def _show_gates(self) -> None:
        """Each gate verdict once, a line per check (what beat or stopped the candidate)."""
        for decision in list_decisions(self.ws.store, deployment=self.deployment):
            for step in decision.steps:
                gate = step.evidence.get("gate")
                if gate is None or decision.id in self.shown_gates:
                    continue
                self.shown_gates.add(decision.id)
                for check in gate["checks"]:
                    mark = "[green]passed[/green]" if check["passed"] else "[red]failed[/red]"
                    self.say(f"  gate {mark} {check['name']}: {check['message']}")


def _mislabel(frame: pd.DataFrame, *, share: float, seed: int) -> pd.DataFrame:
    """``share`` of the rows get the label of another row among them (a join on a wrong key).

    >>> frame = make_churn(1000, seed=0)
    >>> moved = _mislabel(frame, share=0.5, seed=1)
    >>> changed = int((moved[TARGET] != frame[TARGET]).sum())
    >>> 100 < changed < 500, int(moved[TARGET].sum()) == int(frame[TARGET].sum())
    (True, True)
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), int(share * len(frame)), replace=False)
    out = frame.copy()
    out.loc[rows, TARGET] = rng.permutation(frame.loc[rows, TARGET].to_numpy())
    return out


def start_server(deployment: str, port: int) -> subprocess.Popen[bytes]:
    """``modelpilot serve DEPLOYMENT`` on 127.0.0.1:``port``, quietly, one thread per pool."""
    command = [sys.executable, "-m", "modelpilot.cli.main", "serve", deployment]
    return subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ONE_THREAD},
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a demo server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    """Return once the server at ``url`` answers ready; RuntimeError when it exits or takes
    longer than 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the demo server exited; run `modelpilot serve` by hand to see why")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a starting server, bounded by the deadline
    raise RuntimeError("the demo server did not become ready within 60 s")

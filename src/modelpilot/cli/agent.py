"""``modelpilot agent``: run the loop (triggers, lease reclaim) every ``--interval-s``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import typer

from modelpilot.cli.context import console, err_console, get_workspace
from modelpilot.clock import now_ms
from modelpilot.errors import said
from modelpilot.loop.options import DEFAULT_INTERVAL_S, DEFAULT_LEASE_S, check_agent_options

if TYPE_CHECKING:
    # the agent, the pipelines and the workspace bring the store (SQLAlchemy): imported when
    # an agent is made, so the CLI starts without them
    from modelpilot.loop.agent import Agent, AgentIteration
    from modelpilot.workspace import Workspace


def agent_command(
    interval_s: float = typer.Option(
        DEFAULT_INTERVAL_S, "--interval-s", help="Seconds between iterations (more than 0)."
    ),
    lease_s: float = typer.Option(
        DEFAULT_LEASE_S,
        "--lease-s",
        help="A RUNNING pipeline run whose owner has not heartbeat for this long is FAILED.",
    ),
    once: bool = typer.Option(False, "--once", help="Run one iteration and exit (for cron)."),
    max_iterations: int | None = typer.Option(
        None, "--max-iterations", help="Stop after this many iterations."
    ),
) -> None:
    """Run the agent: each iteration reclaims abandoned pipeline runs, evaluates every
    trigger, and moves the continuous-training decisions (gate, approval, canary, promotion
    or rollback), printing one line per decision. SIGTERM or Ctrl-C stops it between iterations."""
    check_agent_options(interval_s=interval_s, lease_s=lease_s, max_iterations=max_iterations)
    agent = workspace_agent(get_workspace(), lease_s=lease_s)
    console.print(
        f"agent {agent.agent_id}: every {interval_s:g} s, lease {lease_s:g} s", highlight=False
    )
    stop = threading.Event()
    with _stopping_on_signals(stop):
        done = agent.run(
            interval_s=interval_s, stop=stop, on_iteration=print_iteration,
            max_iterations=1 if once else max_iterations,
            on_error=None if once else _print_error,
        )  # fmt: skip
    console.print(f"agent {agent.agent_id}: stopped after {done} iteration(s)", highlight=False)


def workspace_agent(ws: Workspace, *, lease_s: float) -> Agent:
    """An agent on ``ws``'s local store, on the real clock, running pipelines in worker
    subprocesses and moving the loop's decisions (``modelpilot agent`` and ``modelpilot
    server --agent``)."""
    from modelpilot.loop.agent import Agent
    from modelpilot.pipelines import (
        PipelineLauncher,
        PipelineServices,
        SubprocessExecutor,
        worker_environment,
    )
    from modelpilot.pipelines.lease import owner_id

    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    launch = PipelineLauncher(services, SubprocessExecutor(env=worker_environment(ws.settings)))
    agent_id = owner_id()
    from modelpilot.loop.runner import LoopRunner  # monitoring and evaluation: only when run

    loop = LoopRunner(ws, owner=agent_id, actor=f"agent:{agent_id}", lease_ms=int(lease_s * 1000))
    return Agent(
        ws.store, clock=now_ms, launch=launch, lease_s=lease_s, agent_id=agent_id, loop=loop
    )


def _print_error(exc: Exception) -> None:
    """A failed iteration of a long-running agent is said and the next one comes (with
    --once it ends the agent with its error instead, for cron to see)."""
    err_console.print(f"iteration failed: {said(exc)}", highlight=False, markup=False)


def print_iteration(done: AgentIteration) -> None:
    lines = done.lines()
    for line in lines or [f"iteration {done.number}: nothing due"]:
        console.print(line, highlight=False, soft_wrap=True)


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the running iteration finishes) instead of killing."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        console.print(
            f"{signal.Signals(signum).name}: stopping after this iteration", highlight=False
        )
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def register(app: typer.Typer) -> None:
    """Attach ``agent``."""
    app.command("agent")(agent_command)
